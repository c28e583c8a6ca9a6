"""The config keys a node reads, with their kinds, and the checked editing of a config file
behind `bacalhau config list|get|set|default` (reference §11).

A key is known when it is a leaf of `config.DEFAULTS` or one of `EXTRA_KEYS` (read by the
code with a default at the call site). Its kind comes from `KINDS` or from its default
(bool, int, list, map); `check_value` turns a command-line value into what the node reads
(YAML scalars as `-c` reads them, comma lists, `k=v` maps) or raises `ConfigError` naming the
key. `set_in_file` checks the value, then the whole resulting config the way a node starting
on it would (`check_config`), and only then rewrites the file.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bacalhau.config import DEFAULTS, Config, load_config, parse_duration
from bacalhau.config import _coerce as coerce_like_c_flag  # -c and env values are read so
from bacalhau.errors import BacalhauError, ConfigError

JOB_TYPES = ("Batch", "Ops", "Daemon", "Service")

EXTRA_KEYS: dict[str, Any] = {
    "Name": "",
    "Store.GroupCommit": True,
    "Orchestrator.EvaluationBroker.MaxQueued": 10000,
    "Orchestrator.MaxUnsentMessages": 50000,
    "Store.GroupCommitMaxItems": 256,
    "Store.GroupCommitMaxDelay": "2ms",
    "Store.GroupCommitLazyDelay": "50ms",
    "JobAdmissionControl.RejectNetworkedJobs": False,
    **{f"JobDefaults.{t}.Task.Publisher.Type": "" for t in JOB_TYPES},
    **{f"JobDefaults.{t}.Task.Timeouts.{k}": "" for t in JOB_TYPES
       for k in ("ExecutionTimeout", "TotalTimeout", "QueueTimeout")},
}
"""Keys the code reads that have no entry in `DEFAULTS` (their default is at the call site)."""

OPEN_MAPS = ("Labels", "Engines.Types.Docker.Registries")
"""Keys whose value is a mapping with keys of the user's choosing (set as a whole)."""

_DURATION, _DURATIONS, _SIZE, _CPU, _CAPACITY_CPU = (
    "duration", "durations", "size", "cpu", "capacity-cpu")
_CAPACITY_BYTES, _CAPACITY_GPU, _USERS = "capacity-bytes", "capacity-gpu", "users"

KINDS: dict[str, str] = {
    "API.RateLimit.RequestsPerSecond": "number",
    "API.RateLimit.Burst": "number",
    "API.MaxBodySize": _SIZE,
    "API.HandlerTimeout": _DURATION,
    "Orchestrator.EvaluationBroker.NackDelays": _DURATIONS,
    "InputSources.MaxSize": _SIZE,
    "Compute.AllocatedCapacity.CPU": _CAPACITY_CPU,
    "Compute.AllocatedCapacity.Memory": _CAPACITY_BYTES,
    "Compute.AllocatedCapacity.Disk": _CAPACITY_BYTES,
    "Compute.AllocatedCapacity.GPU": _CAPACITY_GPU,
    **{f"JobDefaults.{t}.Task.Resources.CPU": _CPU for t in JOB_TYPES},
    **{f"JobDefaults.{t}.Task.Resources.Memory": _SIZE for t in JOB_TYPES},
    **{f"JobDefaults.{t}.Task.Timeouts.{k}": _DURATION for t in JOB_TYPES
       for k in ("ExecutionTimeout", "TotalTimeout", "QueueTimeout")},
}
"""Keys whose kind their default does not tell; others are inferred from it (`true` a bool,
`60s` a duration, `10GB` a size, a list, a map) or are free text."""

CHOICES: dict[str, tuple[str, ...]] = {
    "Network.Transport": ("libp2p", "inprocess"),
    "Logging.Level": ("debug", "info", "warn", "warning", "error"),
    "Metrics.Access": ("read:agent", "open"),
}

_LOOKS_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_LOOKS_SIZE = re.compile(r"^\d+(\.\d+)?\s*[kmgtpe]i?b$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One config key: its canonical dotted name, default and kind."""

    key: str
    default: Any
    kind: str

    @property
    def env(self) -> str:
        return "BACALHAU_" + self.key.replace(".", "_").upper()


def _leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in node.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict) and value and dotted not in OPEN_MAPS:
            yield from _leaves(value, dotted)
        else:
            yield dotted, value


def _kind(key: str, default: Any) -> str:
    if key in KINDS:
        return KINDS[key]
    if key in CHOICES:
        return "choice"
    if key == "API.Auth.Users":
        return _USERS
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "port" if key.endswith(".Port") else "int"
    if isinstance(default, list):
        return "strings"
    if isinstance(default, dict):
        return "map"
    text = str(default)
    if _LOOKS_DURATION.match(text):
        return _DURATION
    if _LOOKS_SIZE.match(text):
        return _SIZE
    return "string"


def known_keys() -> dict[str, KeySpec]:
    """Every known key, by its lower-cased name (keys are case-insensitive)."""
    pairs = [*_leaves(DEFAULTS), *EXTRA_KEYS.items()]
    return {key.lower(): KeySpec(key, default, _kind(key, default)) for key, default in pairs}


def key_spec(key: str) -> KeySpec:
    """The spec of `key` (any case); ConfigError naming it, with near matches, otherwise."""
    keys = known_keys()
    name = key.strip()
    spec = keys.get(name.lower())
    if spec is not None:
        return spec
    lowered = name.lower()
    section = [s.key for k, s in keys.items() if k.startswith(lowered + ".")]
    if section:
        shown = ", ".join(section[:8])
        raise ConfigError(f"{name}: is a section, not a key; set one of its keys: {shown}"
                          + (" ..." if len(section) > 8 else ""))
    close = difflib.get_close_matches(lowered, list(keys), n=3, cutoff=0.6)
    hint = ("did you mean " + " or ".join(keys[c].key for c in close) + "?") if close else \
        "`bacalhau config list` shows every key"
    raise ConfigError(f"{name}: unknown config key", hint=hint)


# ------------------------------------------------------------------------------ value checks


def _parsed(raw: Any) -> Any:
    return coerce_like_c_flag(raw) if isinstance(raw, str) else raw


def _fail(key: str, raw: Any, what: str) -> ConfigError:
    return ConfigError(f'{key}: invalid value "{raw}": {what}')


def _check_bool(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    if isinstance(value, bool):
        return value
    raise _fail(spec.key, raw, "expected true or false")


def _check_int(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        if spec.kind == "port" and value > 65535:
            raise _fail(spec.key, raw, "a port is 0 to 65535 (0 picks a free one)")
        return value
    raise _fail(spec.key, raw, "expected a whole number, 0 or more")


def _check_number(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return value
    raise _fail(spec.key, raw, "expected a number, 0 or more")


def _check_duration(spec: KeySpec, raw: Any) -> Any:
    text = str(raw).strip()
    if text == "" and spec.default == "":
        return ""
    parse_duration(text, spec.key)
    return text


def _check_durations(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    items = value if isinstance(value, list) else str(raw).split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    if not items:
        raise _fail(spec.key, raw, 'expected durations such as "5s,30s"')
    for item in items:
        parse_duration(item, spec.key)
    return ",".join(items)


def _check_quantity(parse: Callable[[str, str], Any], spec: KeySpec, raw: Any) -> Any:
    text = str(raw).strip()
    try:
        parse(text, spec.key)
    except BacalhauError as exc:
        raise ConfigError(str(exc)) from None
    return text


def _check_size(spec: KeySpec, raw: Any) -> Any:
    from bacalhau.models.resources import parse_bytes

    return _check_quantity(parse_bytes, spec, raw)


def _check_cpu(spec: KeySpec, raw: Any) -> Any:
    from bacalhau.models.resources import parse_cpu

    return _check_quantity(parse_cpu, spec, raw)


def _check_capacity(spec: KeySpec, raw: Any) -> Any:
    from bacalhau.compute.capacity import _allocated_value
    from bacalhau.models.resources import parse_bytes, parse_cpu, parse_gpu

    parse = {_CAPACITY_CPU: parse_cpu, _CAPACITY_BYTES: parse_bytes,
             _CAPACITY_GPU: parse_gpu}[spec.kind]
    text = str(raw).strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            raise _fail(spec.key, raw, "a percentage is more than 0% and at most 100%")
    _allocated_value(text, 1.0, parse, spec.key)
    return text


def _check_choice(spec: KeySpec, raw: Any) -> Any:
    text = str(raw).strip().lower()
    choices = CHOICES[spec.key]
    if text not in choices:
        raise _fail(spec.key, raw, "use one of " + ", ".join(choices))
    return text


def _check_strings(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    if isinstance(value, list):
        items = value
    elif value in (None, ""):
        items = []
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        items = str(raw).split(",")
    else:
        raise _fail(spec.key, raw, "expected a list: a,b or [a, b]")
    if any(isinstance(i, (dict, list)) for i in items):
        raise _fail(spec.key, raw, "expected a list of strings")
    return [str(i).strip() for i in items if str(i).strip()]


def _check_map(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    if value in (None, ""):
        return {}
    if isinstance(value, str) and "=" in value:
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            raise _fail(spec.key, raw, "expected key=value pairs: a=b,c=d")
        return {k.strip(): v.strip() for k, v in pairs}
    if isinstance(value, dict):
        if spec.key == "Engines.Types.Docker.Registries" and not all(
                isinstance(v, dict) for v in value.values()):
            raise _fail(spec.key, raw, "expected {<registry host>: {Username, Password}}")
        return value
    raise _fail(spec.key, raw, "expected a mapping: a=b,c=d or {a: b}")


def _check_users(spec: KeySpec, raw: Any) -> Any:
    from bacalhau.api.auth import parse_users

    value = _parsed(raw)
    if value in (None, ""):
        value = []
    parse_users(value)
    return value


def _check_string(spec: KeySpec, raw: Any) -> Any:
    value = _parsed(raw)
    if isinstance(value, (dict, list)):
        raise _fail(spec.key, raw, "expected a single value, not a list or mapping")
    return "" if value is None else str(raw).strip()


_CHECKS: dict[str, Callable[[KeySpec, Any], Any]] = {
    "bool": _check_bool, "int": _check_int, "port": _check_int, "number": _check_number,
    _DURATION: _check_duration, _DURATIONS: _check_durations, _SIZE: _check_size,
    _CPU: _check_cpu, _CAPACITY_CPU: _check_capacity, _CAPACITY_BYTES: _check_capacity,
    _CAPACITY_GPU: _check_capacity, "choice": _check_choice, "strings": _check_strings,
    "map": _check_map, _USERS: _check_users, "string": _check_string,
}


def check_value(key: str, raw: Any) -> tuple[KeySpec, Any]:
    """(spec, value to store) for `key` set to `raw` (a command-line string or an already
    parsed value); ConfigError naming the key when the value is not of its kind."""
    spec = key_spec(key)
    if spec.key == "DataDir":
        raise ConfigError("DataDir: is chosen with --data-dir or BACALHAU_DIR, not in the "
                          "config file that lives inside it")
    return spec, _CHECKS[spec.kind](spec, raw)


def check_config(config: Config) -> None:
    """Check a whole config the way a node starting on it does, for the parts that need no
    running service: API limits and users, capacity, transport, durations of every key.
    Raises ConfigError naming the key."""
    from bacalhau.api.app import api_limits
    from bacalhau.api.auth import parse_users

    api_limits(config)
    parse_users(config.get("API.Auth.Users"))
    for spec in known_keys().values():
        value = config.get(spec.key)
        if value is None or value == spec.default:
            continue
        _CHECKS[spec.kind](spec, value)


# ------------------------------------------------------------------------------ the file


def read_file(path: Path) -> dict[str, Any]:
    """A config file's mapping ({} when it does not exist); ConfigError when unreadable."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}",
                          hint="fix or remove the file, then set the key again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def _set_nested(data: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` in `data`, reusing the casing of keys already in the file."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        match = next((k for k in node if str(k).lower() == part.lower()), None)
        if match is None or not isinstance(node[match], dict):
            match = match or part
            node[match] = {}
        node = node[match]
    last = next((k for k in node if str(k).lower() == parts[-1].lower()), parts[-1])
    node[last] = value


def set_in_file(path: Path, key: str, raw: Any, *, data_dir: Path | None = None) -> KeySpec:
    """Check `key`=`raw`, then the whole config with it, then write it into the YAML file at
    `path` (created, with its folder, when missing; other keys kept). Nothing is written when
    a check fails. Returns the key's spec (its canonical name)."""
    spec, value = check_value(key, raw)
    data = read_file(path)
    _set_nested(data, spec.key, value)
    merged = Config(data)
    if data_dir is not None:
        merged.set("DataDir", str(data_dir))
    check_config(merged)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    else:
        os.chmod(tmp, 0o600)  # it may come to hold passwords and API keys
    os.replace(tmp, path)
    return spec


def effective_values(config: Config, *, redact: bool = True) -> list[tuple[str, Any]]:
    """(key, value) of every known key in the effective config, sorted by key; secrets
    replaced by `********` unless `redact` is false."""
    source = Config(config.redacted()) if redact else config
    return sorted(((spec.key, source.get(spec.key, spec.default))
                   for spec in known_keys().values()), key=lambda kv: kv[0].lower())


def default_document() -> dict[str, Any]:
    """The default config (what `bacalhau config default` prints)."""
    return Config().data


__all__ = ["EXTRA_KEYS", "OPEN_MAPS", "KeySpec", "check_config", "check_value",
           "default_document", "effective_values", "key_spec", "known_keys", "load_config",
           "read_file", "set_in_file"]
