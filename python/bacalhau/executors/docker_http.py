"""`Network HTTP` for the docker engine: each such execution gets its own internal Docker
network and its own filtering proxy (`bacalhau.httpgateway.proxy`) on the compute node.

- The network is a `bridge` created with `internal: true`, named after the container plus
  `-http` and labeled like it (`bacalhau-nodeID`, `bacalhau-jobID`, `bacalhau-executionID`).
  Docker drops every packet that would leave it, so the container has no route out; its only
  peer is the compute host, at the network's gateway address.
- The proxy listens on that gateway address (a free port) and serves only the network's
  subnet, letting through the job's `Network.Domains` and nothing else. The container gets
  `HTTP_PROXY`/`HTTPS_PROXY` (and the lower-case forms) pointing at it, and `NO_PROXY` for
  its own loopback.
- Both go when the run ends (completion, failure, timeout, cancel). After a crash,
  `remove_leftovers` (called by the executor's `restore`) removes the networks of this node
  whose execution is not adopted; an adopted service/daemon container gets a new proxy on its
  network's gateway at the port its proxy variables name.

Node options: `Compute.Network.AllowListedDomains` (default `["*"]`: any domain) limits which
job domains this node accepts at all, in the forms of `bacalhau.httpgateway.domains`;
`Compute.Network.ProxyHosts` maps names to fixed addresses for the proxy (like /etc/hosts:
for tests and private names; DNS is not asked for them and their addresses are trusted).

Bid time (`check`): at least one domain, each well formed and covered by the node's list, and
this host can serve it: a probe creates (and removes) an internal network and binds its
gateway address (a remote or rootless Docker engine's bridges are not on this host), cached
`PROBE_OK_CACHE_S` after success and `PROBE_FAIL_CACHE_S` after a failure.

Known limit: like any Docker bridge network, the container can still open connections to the
compute host itself (its gateway address); keep host services on loopback or firewalled. The
proxy never connects to the host's own addresses for names it resolves by DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bacalhau.config import Config
from bacalhau.errors import ConfigError, ExecutorError
from bacalhau.executors.docker_spec import LABEL_EXECUTION, LABEL_NODE, explain
from bacalhau.httpgateway.domains import ANY_DOMAIN, domain_problem, normalize, uncovered
from bacalhau.httpgateway.proxy import FilteringProxy, Resolver
from bacalhau.models import NetworkConfig

log = logging.getLogger(__name__)

ALLOW_LIST_KEY = "Compute.Network.AllowListedDomains"
PROXY_HOSTS_KEY = "Compute.Network.ProxyHosts"
LABEL_NETWORK_KIND = "bacalhau-network"
NETWORK_KIND_HTTP = "http"
NETWORK_KIND_PROBE = "probe"  # the bid-time probe's, removed at once (or at the next start)
PROBE_OK_CACHE_S = 600.0
PROBE_FAIL_CACHE_S = 60.0
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
NO_PROXY = "localhost,127.0.0.1,::1"


def is_http(network: NetworkConfig | None) -> bool:
    return network is not None and (network.type or "").lower() == "http"


@dataclass(slots=True)
class HTTPSettings:
    """The node's options for `Network HTTP`, validated."""

    allow_list: list[str] = field(default_factory=lambda: [ANY_DOMAIN])
    hosts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> HTTPSettings:
        """From `Compute.Network.AllowListedDomains` and `Compute.Network.ProxyHosts`;
        ConfigError names a bad entry."""
        allow = [normalize(d) for d in config.strings(ALLOW_LIST_KEY)] \
            if config.get(ALLOW_LIST_KEY) is not None else [ANY_DOMAIN]
        for entry in allow:
            if entry != ANY_DOMAIN and (problem := domain_problem(entry)):
                raise ConfigError(f"{ALLOW_LIST_KEY}: {problem} (or * for any domain)")
        raw_hosts = config.get(PROXY_HOSTS_KEY) or {}
        if isinstance(raw_hosts, str):
            raw_hosts = dict(item.split("=", 1) for item in raw_hosts.split(",") if "=" in item)
        if not isinstance(raw_hosts, dict):
            raise ConfigError(f"{PROXY_HOSTS_KEY}: expected a map of host name to address, "
                              "such as {api.example.com: 10.0.0.5}")
        hosts: dict[str, str] = {}
        for name, address in raw_hosts.items():
            try:
                ipaddress.ip_address(str(address).strip())
            except ValueError:
                raise ConfigError(f'{PROXY_HOSTS_KEY}: "{address}" (for {name}) is not an IP '
                                  "address") from None
            hosts[normalize(str(name))] = str(address).strip()
        return cls(allow, hosts)

    def domain_problems(self, network: NetworkConfig) -> list[str]:
        """Why this node refuses the job's domains (empty when it accepts them)."""
        domains = list(network.domains)
        if not domains:
            return ["Network HTTP needs at least one domain in Network.Domains (--domain): "
                    "the job would reach nothing"]
        problems = [f"Network.Domains: {p}" for d in domains if (p := domain_problem(d))]
        if problems:
            return problems
        refused = uncovered(domains, self.allow_list)
        if refused:
            allowed = ", ".join(self.allow_list) or "none"
            problems.append(f"this node does not allow the domain(s) {', '.join(refused)} for "
                            f"Network HTTP ({ALLOW_LIST_KEY}: {allowed})")
        return problems


@dataclass(slots=True)
class HTTPNetwork:
    """One execution's internal network and proxy."""

    name: str
    network_id: str
    gateway: str
    proxy: FilteringProxy

    def env(self) -> dict[str, str]:
        """The proxy variables the container gets."""
        out = dict.fromkeys(PROXY_VARIABLES, self.proxy.url)
        out["NO_PROXY"] = out["no_proxy"] = NO_PROXY
        return out


def proxy_port_from_env(env: Sequence[str]) -> int:
    """The proxy port an adopted container's `HTTP_PROXY` names (0 when none)."""
    for item in env:
        name, _, value = item.partition("=")
        if name == "HTTP_PROXY":
            with contextlib.suppress(ValueError):
                return urlsplit(value).port or 0
    return 0


class HTTPNetworks:
    """The `Network HTTP` networks and proxies of one node's docker executor."""

    def __init__(self, node_id: str, api: Callable[[], Any], labels: Callable[..., dict[str, str]],
                 settings: HTTPSettings | None = None) -> None:
        """`api()` gives the engine's APIClient; `labels(job_id, execution_id, job_type)` the
        labels the executor puts on its containers."""
        self.node_id = node_id
        self.settings = settings or HTTPSettings()
        self._api = api
        self._labels = labels
        self._resolver = Resolver(self.settings.hosts)
        self._open: dict[str, HTTPNetwork] = {}
        self._probe: tuple[float, str] | None = None  # (when, problem)
        self._probe_lock = threading.Lock()

    # ----- bid time ---------------------------------------------------------------------------

    async def check(self, network: NetworkConfig) -> list[str]:
        """Bid-time problems of a `Network HTTP` task on this node."""
        problems = self.settings.domain_problems(network)
        if problems:
            return problems
        probe = await asyncio.to_thread(self._probe_blocking)
        return [probe] if probe else []

    def _probe_blocking(self) -> str:
        with self._probe_lock:
            now = time.monotonic()
            if self._probe is not None:
                when, problem = self._probe
                if now - when < (PROBE_FAIL_CACHE_S if problem else PROBE_OK_CACHE_S):
                    return problem
            problem = self._try_network()
            self._probe = (time.monotonic(), problem)
            return problem

    def _try_network(self) -> str:
        import docker.errors

        api = self._api()
        name = f"bacalhau-probe-{uuid.uuid4().hex[:12]}"
        prefix = "this node cannot serve Network HTTP: "
        try:
            created = api.create_network(name, driver="bridge", internal=True, labels={
                LABEL_NODE: self.node_id, LABEL_NETWORK_KIND: NETWORK_KIND_PROBE})
        except docker.errors.APIError as exc:
            return prefix + f"creating an internal Docker network failed: {explain(exc)}"
        try:
            gateway, _subnet = _addresses(api.inspect_network(created["Id"]))
            with socket.socket(_family(gateway), socket.SOCK_STREAM) as sock:
                sock.bind((gateway, 0))
            return ""
        except (OSError, ExecutorError, docker.errors.APIError) as exc:
            return prefix + (f"the Docker engine's networks are not on this host ({exc}); a "
                             "remote or rootless engine cannot reach a proxy on this node")
        finally:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_network(created["Id"])

    # ----- run time -----------------------------------------------------------------------------

    async def open(self, name: str, *, job_id: str, execution_id: str, job_type: str,
                   network: NetworkConfig, adopted_container: str = "") -> HTTPNetwork:
        """Create the execution's network (or find it again for an adopted container) and
        start its proxy; ExecutorError says why it could not."""
        problems = self.settings.domain_problems(network)
        if problems:
            raise ExecutorError("; ".join(problems),
                                hint="change Tasks[0].Network.Domains or run it elsewhere")
        creating = asyncio.ensure_future(asyncio.to_thread(
            self._network_blocking, name, job_id, execution_id, job_type, adopted_container))
        network_id = ""
        try:
            network_id, gateway, subnet, port = await asyncio.shield(creating)
            proxy = FilteringProxy(network.domains, clients=subnet, resolver=self._resolver,
                                   label=execution_id)
            await proxy.start(gateway, port)
        except BaseException as exc:
            # cancelled or failed half way: nothing may outlive this call
            if not network_id:
                with contextlib.suppress(BaseException):
                    network_id = (await creating)[0]
            if network_id and not adopted_container:
                await asyncio.shield(asyncio.to_thread(self._remove_blocking, network_id))
            if isinstance(exc, OSError):
                raise ExecutorError(f"could not start the HTTP proxy on {name}: {exc}") from exc
            raise
        opened = HTTPNetwork(name, network_id, gateway, proxy)
        self._open[execution_id] = opened
        log.info("execution %s: internal network %s, proxy %s for %s", execution_id, name,
                 proxy.url, ", ".join(network.domains))
        return opened

    def _network_blocking(self, name: str, job_id: str, execution_id: str, job_type: str,
                          adopted_container: str
                          ) -> tuple[str, str, ipaddress.IPv4Network | ipaddress.IPv6Network,
                                     int]:
        import docker.errors

        api = self._api()
        port = 0
        if adopted_container:
            try:
                info = api.inspect_network(name)
                container = api.inspect_container(adopted_container)
                port = proxy_port_from_env(container.get("Config", {}).get("Env") or [])
                gateway, subnet = _addresses(info)
                return str(info["Id"]), gateway, subnet, port
            except docker.errors.APIError as exc:
                raise ExecutorError(f"the internal network {name} of the adopted container "
                                    f"is gone: {explain(exc)}") from exc
        labels = {**self._labels(job_id, execution_id, job_type),
                  LABEL_NETWORK_KIND: NETWORK_KIND_HTTP}
        for attempt in (1, 2):
            try:
                created = api.create_network(name, driver="bridge", internal=True,
                                             labels=labels)
                break
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and attempt == 1:  # a leftover of an earlier try
                    self._remove_blocking(name)
                    continue
                raise ExecutorError(
                    f"could not create the job's internal network: {explain(exc)}",
                    hint="each Network HTTP execution needs a Docker network of its own; "
                         "Docker's address pools may be used up (docker network prune)"
                ) from exc
        try:
            gateway, subnet = _addresses(api.inspect_network(created["Id"]))
        except (docker.errors.APIError, ExecutorError):
            self._remove_blocking(created["Id"])
            raise
        return str(created["Id"]), gateway, subnet, port

    async def close(self, execution_id: str) -> None:
        """Stop the execution's proxy and remove its network (its container is gone)."""
        opened = self._open.pop(execution_id, None)
        if opened is None:
            return
        await opened.proxy.close()
        await asyncio.to_thread(self._remove_blocking, opened.network_id)

    def _remove_blocking(self, network: str) -> None:
        import docker.errors

        try:
            self._api().remove_network(network)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("could not remove network %s: %s", network[:12], explain(exc))

    def open_count(self) -> int:
        return len(self._open)

    # ----- restart ------------------------------------------------------------------------------

    def remove_leftovers(self, keep: set[str]) -> None:
        """Blocking, after the leftover containers are gone: remove this node's `Network
        HTTP` networks except those of executions in `keep` (adopted containers), and any
        probe network a crash left."""
        import docker.errors

        try:
            found = self._api().networks(filters={"label": [
                f"{LABEL_NODE}={self.node_id}", LABEL_NETWORK_KIND]})
        except docker.errors.APIError as exc:
            log.warning("could not list this node's networks: %s", explain(exc))
            return
        for item in found:
            labels = item.get("Labels") or {}
            execution_id = labels.get(LABEL_EXECUTION, "")
            if labels.get(LABEL_NETWORK_KIND) == NETWORK_KIND_HTTP and execution_id in keep:
                continue
            log.info("removing network %s of execution %s (node restart)", item.get("Name"),
                     execution_id or "-")
            self._remove_blocking(str(item["Id"]))


def _addresses(info: Mapping[str, Any]
               ) -> tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """(gateway address, subnet) of an inspected network."""
    for entry in (info.get("IPAM") or {}).get("Config") or []:
        gateway, subnet = entry.get("Gateway"), entry.get("Subnet")
        if gateway and subnet:
            return str(gateway), ipaddress.ip_network(str(subnet), strict=False)
    raise ExecutorError(f"network {info.get('Name')} has no gateway address")


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
