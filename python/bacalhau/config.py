"""Node and client configuration: defaults < `<DataDir>/config.yaml` < env `BACALHAU_*` <
`-c Key=Value` flags, with Bacalhau's dotted key names (reference §11)."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

from bacalhau.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "DataDir": "~/.bacalhau",
    "API": {
        "Host": "127.0.0.1", "Port": 1234,
        # Users: [{Username, Password (plain or bcrypt) | APIKey, Capabilities: [{Actions}]}];
        # none = anonymous access (docs/api.md).
        "Auth": {"Users": []},
        # CertFile + KeyFile serve HTTPS; SelfSigned makes a pair in <DataDir>/tls. Clients:
        # UseTLS, Insecure (skip verification), CAFile.
        "TLS": {"CertFile": "", "KeyFile": "", "SelfSigned": False,
                "UseTLS": False, "Insecure": False, "CAFile": ""},
        # Per client address; 0 = no limit.
        "RateLimit": {"RequestsPerSecond": 1000, "Burst": 1000},
        # Largest request body (413 beyond) and longest handler run (503 beyond; the logs
        # WebSocket is exempt).
        "MaxBodySize": "10MiB", "HandlerTimeout": "30s",
    },
    "NameProvider": "puuid",
    "Labels": {},
    "Orchestrator": {
        "Enabled": False,
        # MaxHeartbeatsPerSecond: nodes are told to heartbeat at most N/this often (Nomad's
        # max_heartbeats_per_second); 0 = every node at its own Compute.Heartbeat.Interval.
        "NodeManager": {"DisconnectTimeout": "60s", "ManualApproval": False,
                        "MaxHeartbeatsPerSecond": 50},
        "Scheduler": {
            "WorkerCount": 4,
            "QueueBackoff": "60s",
            "HousekeepingInterval": "30s",
            "HousekeepingTimeout": "120s",
            "TimeoutBuffer": "1s",
        },
        "EvaluationBroker": {
            "VisibilityTimeout": "60s", "MaxRetryCount": 10, "NackDelays": "5s,30s"},
    },
    "Compute": {
        "Enabled": False,
        "AllowListedLocalPaths": [],
        "AllocatedCapacity": {"CPU": "80%", "Memory": "80%", "Disk": "80%", "GPU": "100%"},
        "Heartbeat": {"Interval": "5s", "InfoUpdateInterval": "60s"},
        "Env": {"AllowList": []},
        # Network HTTP (docker): the job domains this node accepts at all (example.com, or
        # .example.com for it and its subdomains; * = any; [] = none), and names its proxy
        # resolves to fixed addresses instead of asking DNS ({name: address}, like /etc/hosts).
        "Network": {"AllowListedDomains": ["*"], "ProxyHosts": {}},
    },
    "Network": {
        # `libp2p` (TCP + Noise + yamux, gossipsub, request/response; the default of `serve`
        # and `devstack`) or `inprocess` (one process only: devstack and tests).
        "Transport": "libp2p",
        # Multiaddrs to listen on. Empty: where the node listened last time, else
        # /ip4/127.0.0.1/tcp/1235, else a free loopback port (transport/listen.py). Port 0:
        # the port of last time. Loopback only by default: binding another interface
        # (`/ip4/0.0.0.0/tcp/1235`, a LAN address) must be asked for explicitly.
        "Listen": [],
        # Multiaddrs of peers to join, each ending in `/p2p/<peer id>` (`bacalhau serve`
        # prints them and writes them to `<DataDir>/bacalhau.run`).
        "Peers": [],
        # Kubo-format swarm.key making the network private (`bacalhau swarm-key generate`).
        "SwarmKeyPath": "",
        # Peer ids allowed to connect; empty = any peer (holding the swarm key, if one is set).
        "AllowList": [],
        # A compute node's connections besides the requesters it knows (they dial it; it
        # never dials other compute nodes). Requesters accept every node.
        "MaxPeers": 32,
    },
    "Publishers": {
        "Types": {"Local": {"Address": "127.0.0.1", "Port": 6001, "Directory": ""},
                  "S3": {"PreSignedURLDisabled": False, "PreSignedURLExpiration": "1h"},
                  # Kubo RPC of the `ipfs` publisher; "" = the embedded node, if enabled
                  "IPFS": {"Endpoint": ""}},
    },
    "InputSources": {"ReadTimeout": "300s", "MaxRetryCount": 3, "MaxSize": "10GB",
                     # Kubo RPC for `ipfs` inputs; "" = the embedded node, if enabled
                     "Types": {"IPFS": {"Endpoint": ""}}},
    # `job get` of `ipfs` results: Kubo RPC; "" = a short-lived embedded node
    "ResultDownloaders": {"Types": {"IPFS": {"Endpoint": ""}}},
    # Embedded Kubo node (child process, repo <DataDir>/ipfs; bacalhau.ipfs.embedded):
    # loopback-only and private by default; Peers = multiaddrs ending in /p2p/<peer id>.
    "IPFS": {"Embedded": {"Enabled": False, "SwarmKeyPath": "", "Peers": [],
                          "Listen": ["/ip4/127.0.0.1/tcp/0"]}},
    "JobDefaults": {
        kind: {"Task": {"Resources": {"CPU": "500m", "Memory": "512Mb"}}}
        for kind in ("Batch", "Ops", "Daemon", "Service")
    },
    "Engines": {"Disabled": [], "Types": {
        "WASM": {"CacheDir": ""},
        # Registries: {<registry host>: {Username, Password}} for private images (docker.io
        # for Docker Hub); StopTimeout: grace between SIGTERM and SIGKILL on cancel/timeout.
        "Docker": {"Registries": {}, "StopTimeout": "1s"},
    }},
    "Logging": {"Level": "info"},
    # The web UI at <API>/ui/ on requester nodes; Listen (host:port) serves it on its own too.
    "WebUI": {"Enabled": True, "Listen": ""},
    # Prometheus metrics at <API>/metrics; Access: read:agent (users with that capability,
    # when API.Auth.Users has users) or open (bacalhau.metrics). Listen (host:port) serves
    # /metrics on its own too (compute-only nodes have no API).
    "Metrics": {"Enabled": True, "Access": "read:agent", "Listen": ""},
}

# AWS-style names too: AccessKeyID, SecretAccessKey, SessionToken, Credentials
_SECRET_KEY = re.compile(r"(token|password|secret|apikey|api_key|key|keyid|key_id|credentials?)$",
                         re.IGNORECASE)
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0, None: 1.0}


def parse_duration(value: Any, key: str = "duration") -> float:
    """Seconds from `30s`, `1m`, `100ms`, `1h30m` or a plain number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    total = 0.0
    parts = re.findall(r"([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h)?", text)
    if not parts or "".join(a + (b or "") for a, b in parts) != text.replace(" ", ""):
        raise ConfigError(f'{key}: invalid duration "{value}": use e.g. "30s", "1m" or "100ms"')
    for number, unit in parts:
        total += float(number) * _DURATION_UNITS[unit or None]
    return total


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge `extra` into `base`, matching keys case-insensitively (Bacalhau keys are)."""
    for key, value in extra.items():
        existing = next((k for k in base if k.lower() == str(key).lower()), None)
        target_key = existing if existing is not None else key
        if isinstance(value, dict) and isinstance(base.get(target_key), dict):
            _merge(base[target_key], value)
        else:
            base[target_key] = value


# Values whose YAML reading needs no parser: every CLI run reads its BACALHAU_* env through
# `_coerce`, and importing yaml costs ~10 ms of it (issue 15). Decimal integers; words and
# dotted names (hosts) that start with a letter, bar YAML's booleans and nulls; dotted numbers
# with two or more dots (addresses), which no YAML 1.1 number or date pattern matches.
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_DOTTED_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})


def _coerce(text: str) -> Any:
    """A `-c` or env value: YAML scalars (true, 3, 1.5), comma lists, or `k=v,k2=v2` maps."""
    if _DECIMAL.fullmatch(text):
        return int(text)
    if _DOTTED_NUMBER.fullmatch(text) or (
            _PLAIN_NAME.fullmatch(text) and text.lower() not in _YAML_WORDS):
        return text
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    return value


class Config:
    """A nested mapping of Bacalhau config keys with dotted, case-insensitive lookup."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = copy.deepcopy(DEFAULTS)
        if data:
            _merge(self.data, data)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict):
                return default
            match = next((k for k in node if k.lower() == part.lower()), None)
            if match is None:
                return default
            node = node[match]
        return node

    def set(self, key: str, value: Any) -> None:
        parts = key.split(".")
        node = self.data
        for part in parts[:-1]:
            match = next((k for k in node if k.lower() == part.lower()), None)
            if match is None or not isinstance(node[match], dict):
                match = match or part
                node[match] = {}
            node = node[match]
        last = next((k for k in node if k.lower() == parts[-1].lower()), parts[-1])
        node[last] = value

    def duration(self, key: str) -> float:
        return parse_duration(self.get(key), key)

    def strings(self, key: str) -> list[str]:
        """A list-valued key that may also be given as one comma-separated string (env, `-c`)."""
        value = self.get(key)
        if value in (None, ""):
            return []
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, (list, tuple)):
            return [str(item).strip() for item in value if str(item).strip()]
        raise ConfigError(f"{key}: expected a list or a comma-separated string, got {value!r}")

    def flag(self, key: str) -> bool:
        """A boolean key: true for `true`/`1`/`yes` (any case), from YAML, env or `-c`."""
        return str(self.get(key, False)).strip().lower() in ("true", "1", "yes")

    def labels(self) -> dict[str, str]:
        """The user's node labels (`Labels`), from a mapping or a `-c Labels=a=b,c=d` string."""
        user = self.get("Labels") or {}
        if isinstance(user, str):
            user = dict(item.split("=", 1) for item in user.split(",") if "=" in item)
        if not isinstance(user, dict):
            raise ConfigError(
                "Labels: expected a mapping such as {region: eu} or 'region=eu,gpu=no'")
        return {str(k).strip(): str(v).strip() for k, v in user.items()}

    def copy(self) -> Config:
        return Config(copy.deepcopy(self.data))

    @property
    def data_dir(self) -> Path:
        return Path(os.path.expanduser(str(self.get("DataDir")))).resolve()

    def redacted(self) -> dict[str, Any]:
        """The config with secrets replaced by `********` (for `agent config`)."""

        def walk(node: Any, key: str = "") -> Any:
            if isinstance(node, dict):
                return {k: walk(v, k) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v, key) for v in node]
            if key and _SECRET_KEY.search(key) and node not in ("", None):
                return "********"
            return node

        return walk(self.data)


def _env_overrides(environ: dict[str, str]) -> list[tuple[str, Any]]:
    """`BACALHAU_API_PORT=1235` -> ("API.Port", 1235) for keys that exist in the defaults."""
    known: dict[str, str] = {}

    def collect(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            dotted = f"{prefix}.{k}" if prefix else k
            known["BACALHAU_" + dotted.replace(".", "_").upper()] = dotted
            if isinstance(v, dict):
                collect(v, dotted)

    collect(DEFAULTS, "")
    out = []
    for name, value in environ.items():
        if name in known and name != "BACALHAU_DATADIR":
            out.append((known[name], _coerce(value)))
    return out


def load_config(
    data_dir: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the effective config. `overrides` are `-c` values: `Key.Path=value` or a YAML file."""
    env = dict(os.environ if environ is None else environ)
    config = Config()
    if data_dir is None:
        data_dir = env.get("BACALHAU_DIR") or env.get("BACALHAU_DATADIR") or DEFAULTS["DataDir"]
    config.set("DataDir", str(Path(os.path.expanduser(str(data_dir))).resolve()))
    file = config.data_dir / "config.yaml"
    if file.is_file():
        _load_yaml_into(config, file)
    for key, value in _env_overrides(env):
        config.set(key, value)
    for item in overrides or []:
        if "=" in item:
            key, _, raw = item.partition("=")
            if not key.strip():
                raise ConfigError(f'-c "{item}": expected Key.Path=value')
            config.set(key.strip(), _coerce(raw))
        else:
            path = Path(item)
            if not path.is_file():
                raise ConfigError(
                    f'-c "{item}": not a Key=Value pair and no such config file; '
                    "use e.g. -c API.Port=1235 or -c ./config.yaml"
                )
            _load_yaml_into(config, path)
    return config


def _load_yaml_into(config: Config, path: Path) -> None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    _merge(config.data, data)
