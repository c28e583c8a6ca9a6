"""`Network HTTP` against the real Docker engine, through a real `bacalhau serve`.

The origin is a busybox `httpd` in a container of this test on Docker's default bridge (an
address of a network namespace the test creates, not of the host). The node's proxy resolves
the test domains to it with the resolver override `Compute.Network.ProxyHosts` (the names do
not exist in DNS). The same origin is reachable from a `Bridge` job, so a failure from a
`Network HTTP` job is the network's doing, not a dead server.

Jobs talk HTTP with busybox `nc` to the address in `$HTTP_PROXY`, as a proxy-aware client
does (the busybox `wget` of the test image crashes on any URL). Shown:
- an allowed domain is reached through the proxy (plain HTTP and a CONNECT tunnel, a
  wildcard domain), with the proxy variables set;
- a domain not on the list gets the proxy's 403;
- a direct connection that skips the proxy reaches nothing (Docker drops what would leave the
  internal network), where a Bridge job gets through; `--network none` reaches nothing;
- job B cannot use job A's proxy (nor A's domains through its own);
- the networks are removed when jobs complete, are stopped, and when the node restarts after
  a crash;
- the bid refuses domains outside `Compute.Network.AllowListedDomains`, and a wasm job asking
  for Network HTTP, each with the reason.
"""

from __future__ import annotations

import ipaddress
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ServeProcess, wait_until
from tests.integration.test_docker import (
    _running_container,
    containers,
    docker_api,
    docker_job,
    executions,
    messages,
)
from tests.integration.test_serve_cli import submit, wait_terminal
from tests.jobspecs import wordcount_job

pytestmark = [pytest.mark.integration]
__all__ = ["docker_api"]

TOKEN = f"origin-{uuid.uuid4().hex[:8]}"
ORIGIN_PORT = 8080
NODE_DOMAINS = "[allowed.test, .wild.test, other.test]"


@pytest.fixture(scope="module")
def origin(docker_api: Any) -> Iterator[str]:
    """The origin's address: busybox httpd serving TOKEN on the default bridge."""
    from bacalhau.executors.docker import TEST_IMAGE

    created = docker_api.create_container(
        TEST_IMAGE, ["sh", "-c", f"mkdir -p /www && echo {TOKEN} > /www/index.html && "
                                 f"exec httpd -f -p {ORIGIN_PORT} -h /www"],
        name=f"bacalhau-py-test-origin-{uuid.uuid4().hex[:8]}",
        host_config=docker_api.create_host_config(network_mode="bridge"))
    docker_api.start(created["Id"])
    try:
        address = wait_until(
            lambda: docker_api.inspect_container(created["Id"])["NetworkSettings"]["IPAddress"],
            30, what="the origin container's address")
        yield address
    finally:
        docker_api.remove_container(created["Id"], force=True)


@pytest.fixture(scope="module")
def server(origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    hosts = ", ".join(f"{name}: {origin}"
                      for name in ("allowed.test", "a.wild.test", "other.test"))
    node = ServeProcess(data_dir=tmp_path_factory.mktemp("docker-http") / "node", extra_args=[
        "-c", f"Compute.Network.ProxyHosts={{{hosts}}}",
        "-c", f"Compute.Network.AllowListedDomains={NODE_DOMAINS}"])
    node.start()
    try:
        yield node
    finally:
        node.stop()


def networks(api: Any, node_id: str) -> list[dict[str, Any]]:
    """The node's Network HTTP networks (not its short-lived bid-time probe)."""
    return api.networks(filters={"label": [f"bacalhau-nodeID={node_id}",
                                           "bacalhau-network=http"]})


def http_job(script: str, *domains: str) -> dict[str, Any]:
    job = docker_job(script, network="HTTP")
    job["Tasks"][0]["Network"]["Domains"] = list(domains)
    return job


# The proxy's address from $HTTP_PROXY, then one request through it per line of output.
PROXY = 'p=${HTTP_PROXY#http://}; H=${p%:*}; P=${p##*:}; '


def via_proxy(label: str, request: str) -> str:
    return (f'r=$(printf "{request}" | nc -w 10 "$H" "$P"); '
            f'echo "{label}: $(echo "$r" | head -1 | tr -d "\\r") | '
            f'$(echo "$r" | tail -1 | tr -d "\\r")"; ')


def direct(origin: str) -> str:
    return (f'r=$(printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {origin} {ORIGIN_PORT}); '
            'echo "direct: rc=$? $(echo "$r" | tail -1)"; ')


def output(server: ServeProcess, job_id: str) -> str:
    state = wait_terminal(server, job_id, 90)
    assert state["StateType"] == "Completed", messages(server, job_id)
    (execution,) = executions(server, job_id)
    return execution["RunOutput"]["Stdout"]


def test_allowed_domains_pass_the_rest_gets_403_and_direct_traffic_goes_nowhere(
        server: ServeProcess, origin: str, docker_api: Any) -> None:
    script = (PROXY + 'echo "vars: $HTTP_PROXY $HTTPS_PROXY $http_proxy $https_proxy"; '
              + via_proxy("allowed", f"GET http://allowed.test:{ORIGIN_PORT}/ HTTP/1.1\\r\\n"
                                     f"Host: allowed.test:{ORIGIN_PORT}\\r\\n\\r\\n")
              + via_proxy("other", f"GET http://other.test:{ORIGIN_PORT}/ HTTP/1.1\\r\\n"
                                   f"Host: other.test:{ORIGIN_PORT}\\r\\n\\r\\n")
              + via_proxy("tunnel", f"CONNECT a.wild.test:{ORIGIN_PORT} HTTP/1.1\\r\\n\\r\\n"
                                    "GET / HTTP/1.0\\r\\n\\r\\n")
              + direct(origin))
    job_id = submit(server, http_job(script, "allowed.test", ".wild.test"))
    lines = dict(line.split(": ", 1) for line in output(server, job_id).splitlines())

    proxy_url = lines["vars"].split()[0]  # the gateway of the job's own network
    gateway = ipaddress.ip_address(proxy_url.removeprefix("http://").rsplit(":", 1)[0])
    assert gateway.is_private and not gateway.is_loopback
    assert lines["vars"].split() == [proxy_url] * 4
    assert lines["allowed"] == f"HTTP/1.1 200 OK | {TOKEN}"
    assert lines["other"] == ("HTTP/1.1 403 Forbidden | bacalhau proxy: other.test is not in "
                              "this job's Network.Domains (allowed.test, .wild.test)")
    assert lines["tunnel"] == f"HTTP/1.1 200 Connection established | {TOKEN}"
    assert lines["direct"].startswith("rc=1") and TOKEN not in lines["direct"]

    # the same direct request from a Bridge job reaches the origin: the server is up
    bridge = submit(server, docker_job(direct(origin), network="Bridge"))
    assert output(server, bridge).strip() == f"direct: rc=0 {TOKEN}"
    # Network None reaches nothing and has no proxy
    none = submit(server, docker_job('echo "proxy=${HTTP_PROXY:-unset}"; ' + direct(origin),
                                     network="None"))
    out = output(server, none)
    assert out.startswith("proxy=unset\ndirect: rc=1") and TOKEN not in out

    wait_until(lambda: networks(docker_api, server.node_id) == [], 15,
               what="the completed job's network to be removed")


def test_one_job_cannot_use_another_jobs_proxy(server: ServeProcess, docker_api: Any) -> None:
    holder = submit(server, http_job("sleep 600", "allowed.test"))
    running = wait_until(lambda: _running_container(docker_api, holder), 60,
                         what="job A's container to run")
    env = docker_api.inspect_container(running[0]["Id"])["Config"]["Env"]
    a_proxy = next(e for e in env if e.startswith("HTTP_PROXY=")).split("=", 1)[1]
    host, port = a_proxy.removeprefix("http://").rsplit(":", 1)

    request = f"GET http://allowed.test:{ORIGIN_PORT}/ HTTP/1.1\\r\\n\\r\\n"
    script = (f'H={host}; P={port}; ' + via_proxy("through-a", request)
              + PROXY + via_proxy("own", request))
    other = submit(server, http_job(script, ".wild.test"))
    lines = dict(line.split(": ", 1) for line in output(server, other).splitlines())
    assert TOKEN not in lines["through-a"]  # A's proxy does not serve B's network
    assert lines["own"].startswith("HTTP/1.1 403 Forbidden | bacalhau proxy: allowed.test "
                                   "is not in this job's Network.Domains (.wild.test)")

    # stopping A removes its container, its proxy and its network
    assert len(networks(docker_api, server.node_id)) == 1
    stopped = server.cli("job", "stop", holder)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    wait_until(lambda: networks(docker_api, server.node_id) == [], 30,
               what="the stopped job's network to be removed")
    assert containers(docker_api, "bacalhau-jobID", holder) == []


def test_a_crash_leaves_a_network_that_the_restart_removes(server: ServeProcess,
                                                           docker_api: Any) -> None:
    job_id = submit(server, http_job("sleep 600", "allowed.test"))
    wait_until(lambda: _running_container(docker_api, job_id), 60,
               what="the job's container to run")
    node_id = server.node_id
    assert len(networks(docker_api, node_id)) == 1
    server.stop(signal.SIGKILL)
    assert len(networks(docker_api, node_id)) == 1  # outlived the node
    server.start()
    wait_until(lambda: networks(docker_api, node_id) == [] or None, 30,
               what="the restarted node to remove the crashed execution's network")
    server.cli("job", "stop", job_id)  # its replacement, if one was placed
    wait_until(lambda: containers(docker_api, "bacalhau-jobID", job_id) == []
               and networks(docker_api, node_id) == [], 30,
               what="the replacement's container and network to go")


def test_the_bid_refuses_domains_the_node_does_not_allow(server: ServeProcess) -> None:
    job_id = submit(server, http_job("true", "allowed.test", "forbidden.test"))
    assert wait_terminal(server, job_id, 60)["StateType"] == "Failed"
    assert ("this node does not allow the domain(s) forbidden.test for Network HTTP "
            f"(Compute.Network.AllowListedDomains: {NODE_DOMAINS[1:-1]})"
            in messages(server, job_id))


def test_a_wasm_job_asking_for_network_http_is_refused_with_the_reason(
        server: ServeProcess) -> None:
    job = wordcount_job()
    job["Tasks"][0]["Network"] = {"Type": "HTTP", "Domains": ["allowed.test"]}
    job_id = submit(server, job)
    assert wait_terminal(server, job_id, 60)["StateType"] == "Failed"
    assert "the wasm engine cannot run a Network HTTP task: a WASI module has no sockets" \
        in messages(server, job_id)


def test_a_restarted_node_gives_an_adopted_service_container_its_proxy_back(
        server: ServeProcess, docker_api: Any) -> None:
    request = f"GET http://allowed.test:{ORIGIN_PORT}/ HTTP/1.1\\r\\n\\r\\n"
    loop = (PROXY + f'while true; do r=$(printf "{request}" | nc -w 5 "$H" "$P"); '
            f'case "$r" in *{TOKEN}*) echo ok;; *) echo fail;; esac; sleep 0.2; done')
    job = http_job(loop, "allowed.test")
    job["Type"] = "service"
    del job["Tasks"][0]["ResultPaths"], job["Tasks"][0]["Publisher"]
    job_id = submit(server, job)
    (container,) = wait_until(lambda: _running_container(docker_api, job_id), 60,
                              what="the service's container to run")

    def lines() -> list[str]:
        return docker_api.logs(container["Id"]).decode().split()

    wait_until(lambda: "ok" in lines(), 30, what="the service to reach the origin")
    node_id = server.node_id
    server.stop(signal.SIGKILL)  # the proxy dies with the node: the requests fail
    wait_until(lambda: lines()[-1] == "fail", 30, what="requests to fail without the proxy")
    server.start()
    # adopted (the same container), its network kept, a proxy on the port it knows
    wait_until(lambda: lines()[-1] == "ok", 60, what="the proxy to be back for the service")
    assert [c["Id"] for c in containers(docker_api, "bacalhau-jobID", job_id)] == \
        [container["Id"]]
    assert len(networks(docker_api, node_id)) == 1
    stopped = server.cli("job", "stop", job_id)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    wait_until(lambda: containers(docker_api, "bacalhau-jobID", job_id) == []
               and networks(docker_api, node_id) == [], 30,
               what="the service's container and network to go")


def test_docker_run_with_network_http_and_domain_from_the_cli(server: ServeProcess) -> None:
    script = PROXY + via_proxy("got", f"GET http://allowed.test:{ORIGIN_PORT}/ HTTP/1.1\\r\\n"
                                      f"Host: allowed.test\\r\\n\\r\\n")
    run = server.cli("docker", "run", "--network", "http", "--domain", "allowed.test",
                     "--id-only", "--wait", "--entrypoint", "/bin/sh",
                     "bacalhau-py/test:busybox", "--", "-c", script, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.strip().splitlines()[-1]
    assert output(server, job_id).strip() == f"got: HTTP/1.1 200 OK | {TOKEN}"
