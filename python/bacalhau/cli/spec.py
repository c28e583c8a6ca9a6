"""Job specs built on the client side: loading `job run` files and assembling the jobs of
`wasm run` and `docker run` from their flags.

Both run commands share the job and task builders (`JobSettings`/`TaskSettings` ->
`build_job`/`build_task`); only the engine params differ (`build_wasm_job`,
`build_docker_job`); inputs, outputs and publishers from flags are in `spec_sources` (re-exported
here). Everything here is a pure function over plain wire dicts (reference §2),
raising `click.UsageError`/`click.BadParameter` with a message that says what to change.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import orjson

from bacalhau.cli.spec_sources import (  # noqa: F401 (re-exported: the run commands' interface)
    DEFAULT_INPUT_TARGET,
    MAX_INLINE_BYTES,
    data_url,
    inline_input,
    input_source,
    parse_input,
    parse_output,
    publisher_spec,
    s3_source,
    split_top_level,
)

ALLOWED_JOB_KEYS = (
    "Name",
    "Namespace",
    "Type",
    "Priority",
    "Count",
    "Constraints",
    "Meta",
    "Labels",
    "Tasks",
)
SERVER_JOB_KEYS = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")



# ---------------------------------------------------------------- job run files


def parse_job_document(text: str, source: str) -> dict[str, Any]:
    """Parse a JSON or YAML job spec and check its top-level keys."""
    import yaml  # here: `docker run`/`wasm run` never parse YAML (issue 15)

    try:
        data = orjson.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise click.UsageError(f"{source} is not valid JSON or YAML: {exc}") from None
    if not isinstance(data, dict):
        raise click.UsageError(
            f"{source} must hold one job: a mapping with keys such as Type and Tasks"
        )
    check_job_keys(data, source)
    return data


def check_job_keys(job: dict[str, Any], source: str = "the job spec") -> None:
    """Reject keys a user may not set (server-owned) or that the job model does not have."""
    allowed = {k.lower(): k for k in ALLOWED_JOB_KEYS}
    server = {k.lower(): k for k in SERVER_JOB_KEYS}
    for key in job:
        lowered = str(key).lower()
        if lowered in allowed:
            continue
        if lowered in server:
            raise click.UsageError(
                f"{source}: field {key!r} is set by the server and cannot be submitted; "
                "remove it from the spec"
            )
        raise click.UsageError(
            f"{source}: unknown field {key!r}; a job spec may only contain "
            + ", ".join(ALLOWED_JOB_KEYS)
        )


# ---------------------------------------------------------------- flag parsing


def parse_key_values(values: Iterable[str], flag: str) -> dict[str, str]:
    """`K=V` items (each item may hold several, comma separated) into a dict."""
    out: dict[str, str] = {}
    for item in values:
        for part in split_top_level(item):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{part!r} is not of the form KEY=VALUE", param_hint=flag)
            out[key.strip()] = value.strip()
    return out


def env_items(values: Iterable[str]) -> list[tuple[str, str]]:
    """`-e K=V` items in order. An item may hold several variables separated by commas
    (`-e A=1,B=2`, as Bacalhau's string-slice flag reads it) when every comma-separated part is
    itself `NAME=VALUE`; otherwise the commas belong to the value (`-e GREETING=hi,there`)."""
    out: list[tuple[str, str]] = []
    for item in values:
        parts = item.split(",")
        if len(parts) > 1 and all(_ENV_PART.match(part) for part in parts):
            pieces = parts
        else:
            pieces = [item]
        for piece in pieces:
            key, sep, value = piece.partition("=")
            if not sep or not key:
                raise click.BadParameter(
                    f"{piece!r} is not of the form NAME=VALUE", param_hint="--env"
                )
            if key.upper().startswith("BACALHAU_"):
                raise click.BadParameter(
                    f"{key!r}: names starting with BACALHAU_ are reserved for the variables "
                    "every execution gets",
                    param_hint="--env",
                )
            out.append((key, value))
    return out


_ENV_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def parse_env(values: Iterable[str]) -> dict[str, str]:
    """`-e K=V` items into a task `Env` map (later items win)."""
    return dict(env_items(values))


_SET_OP = re.compile(r"^([^\s()!=<>]+)\s+(in|notin)\s*\((.*)\)$")
_BIN_OP = re.compile(r"^([^\s()!=<>]+)\s*(==|!=|=|>|<)\s*([^\s()]*)$")
_KEY = re.compile(r"^!?\s*[^\s()!=<>,]+$")


def parse_selector(text: str) -> list[dict[str, Any]]:
    """A Kubernetes label selector (`a=b,c!=d,e in (x,y),!f,g>3`) into job Constraints."""
    out: list[dict[str, Any]] = []
    for part in split_top_level(text):
        if m := _SET_OP.match(part):
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            if not values:
                raise click.BadParameter(f"{part!r}: {m.group(2)} needs values", param_hint="-s")
            out.append({"Key": m.group(1), "Operator": m.group(2), "Values": values})
        elif m := _BIN_OP.match(part):
            op = {">": "gt", "<": "lt"}.get(m.group(2), m.group(2))
            out.append({"Key": m.group(1), "Operator": op, "Values": [m.group(3)]})
        elif _KEY.match(part):
            negated = part.startswith("!")
            key = part.lstrip("!").strip()
            out.append({"Key": key, "Operator": "!" if negated else "exists", "Values": []})
        else:
            raise click.BadParameter(
                f"{part!r} is not a label selector requirement "
                "(try key=value, key!=value, key in (a,b), key, !key, key>1)",
                param_hint="--constraints",
            )
    return out


_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_:|-]")


def parse_labels(values: Iterable[str]) -> dict[str, str]:
    """`-l` items into job Labels. Each item (or comma-separated part) is `key=value` or a bare
    `key` (empty value); characters outside `a-zA-Z0-9_:|-` are stripped from both, as
    Bacalhau's CLI does."""
    out: dict[str, str] = {}
    for item in values:
        for part in split_top_level(item):
            raw_key, _, raw_value = part.partition("=")
            key = _LABEL_CHARS.sub("", raw_key)
            if not key:
                raise click.BadParameter(
                    f"{part!r} has no letters, digits or _:|- left for a label name",
                    param_hint="--labels",
                )
            out[key] = _LABEL_CHARS.sub("", raw_value)
    return out


# ---------------------------------------------------------------- job and task builders

NETWORK_CHOICES = ("none", "host", "bridge", "http", "default", "full")
_NETWORK_WIRE = {"none": "None", "host": "Host", "bridge": "Bridge", "http": "HTTP",
                 "default": "Default", "full": "Full"}
JOB_TYPES = ("batch", "ops", "daemon", "service")
LONG_RUNNING_TYPES = ("daemon", "service")


@dataclass(slots=True)
class TaskSettings:
    """The task flags every run command shares (reference §7 task flags)."""

    task_name: str = "main"
    inputs: Sequence[str] = ()
    outputs: Sequence[str] = ()
    publisher: str = "local"  # a `-p` value (see `publisher_spec`)
    cpu: str = ""
    memory: str = ""
    disk: str = ""
    gpu: str = ""
    network: str = ""
    domains: Sequence[str] = ()
    timeout: int = 0  # ExecutionTimeout, seconds
    queue_timeout: int = 0
    default_outputs: bool = False  # add `outputs:/outputs` unless /outputs is mapped


@dataclass(slots=True)
class JobSettings:
    """The job flags every run command shares (reference §7 job flags)."""

    name: str = ""
    namespace: str = ""
    priority: int = 0
    count: int = 1
    target: str = "any"
    type: str = ""
    labels: Sequence[str] = ()
    constraints: str = ""

    def job_type(self) -> str:
        """`--type` when given, else batch for `--target any` and ops for `--target all`."""
        if not self.type:
            return "ops" if self.target == "all" else "batch"
        kind = self.type.lower()
        if kind not in JOB_TYPES:
            raise click.BadParameter(
                f"{self.type!r} is not a job type; use one of {', '.join(JOB_TYPES)}",
                param_hint="--type",
            )
        if self.target == "all" and kind not in ("ops", "daemon"):
            raise click.UsageError(
                f"--target all runs on every matching node (an ops or daemon job); "
                f"it does not go with --type {kind}"
            )
        return kind


def network_config(network: str, domains: Sequence[str]) -> dict[str, Any] | None:
    """`--network`/`--domain` into a task Network, or None when neither was given (the
    executor's default then applies: bridge for docker, host for wasm)."""
    domains = [d.strip() for d in domains if d.strip()]
    if not network and not domains:
        return None
    kind = network.lower() or "default"
    if kind not in _NETWORK_WIRE:
        raise click.BadParameter(
            f"{network!r} is not a network type; use one of {', '.join(NETWORK_CHOICES)}",
            param_hint="--network",
        )
    if domains and kind != "http":
        raise click.UsageError(
            "--domain lists the hosts an HTTP-networked job may reach: add --network http"
        )
    out: dict[str, Any] = {"Type": _NETWORK_WIRE[kind]}
    if domains:
        out["Domains"] = domains
    return out


def build_task(
    engine: dict[str, Any],
    settings: TaskSettings,
    *,
    sources: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A task dict: `engine` plus the shared task flags. `sources` are input sources already
    parsed (the wasm builder adds its modules to them); None parses `settings.inputs`."""
    if sources is None:
        sources = [parse_input(item) for item in settings.inputs]
    task: dict[str, Any] = {"Name": settings.task_name or "main", "Engine": engine}
    if settings.publisher:
        task["Publisher"] = publisher_spec(settings.publisher)
    if env:
        task["Env"] = env
    if sources:
        task["InputSources"] = sources
    result_paths = [parse_output(o) for o in settings.outputs]
    if settings.default_outputs and not any(r["Path"] == "/outputs" for r in result_paths):
        if any(r["Name"] == "outputs" for r in result_paths):
            raise click.BadParameter(
                "the result name 'outputs' is taken by /outputs; name your path otherwise",
                param_hint="--output",
            )
        result_paths.insert(0, {"Name": "outputs", "Path": "/outputs"})
    if result_paths:
        task["ResultPaths"] = result_paths
    resources = {
        k: v
        for k, v in (
            ("CPU", settings.cpu),
            ("Memory", settings.memory),
            ("Disk", settings.disk),
            ("GPU", settings.gpu),
        )
        if v
    }
    if resources:
        task["Resources"] = resources
    if network := network_config(settings.network, settings.domains):
        task["Network"] = network
    timeouts = {
        k: v
        for k, v in (
            ("ExecutionTimeout", settings.timeout),
            ("QueueTimeout", settings.queue_timeout),
        )
        if v
    }
    if timeouts:
        task["Timeouts"] = timeouts
    return task


def build_job(task: dict[str, Any], settings: JobSettings) -> dict[str, Any]:
    """A job dict around `task` from the shared job flags."""
    job: dict[str, Any] = {}
    if settings.name:
        job["Name"] = settings.name
    job["Namespace"] = settings.namespace or "default"
    job["Type"] = settings.job_type()
    if job["Type"] in ("batch", "service"):
        job["Count"] = settings.count
    if settings.priority:
        job["Priority"] = settings.priority
    if settings.constraints:
        job["Constraints"] = parse_selector(settings.constraints)
    if label_map := parse_labels(settings.labels):
        job["Labels"] = label_map
    job["Tasks"] = [task]
    return job


# ---------------------------------------------------------------- wasm jobs


def resolve_module(
    module: str, inputs: list[dict[str, Any]], default_target: str, url_dir: str = ""
) -> str:
    """Path of a wasm module inside the job: a path under an input's target, a local file
    (inlined at `default_target`), or a URI (`ipfs://CID`, `s3://...` mounted at
    `default_target`; `http(s)://...` downloaded into `url_dir`, default the folder of
    `default_target`). The new input is appended to `inputs`."""
    if module.startswith("/"):
        for source in inputs:
            target = str(source.get("Target", "")).rstrip("/")
            if target and (module == target or module.startswith(target + "/")):
                return module
    if "://" in module:
        scheme = module.partition("://")[0].lower()
        if scheme in ("http", "https"):
            folder = url_dir or posixpath.dirname(default_target)
            name = posixpath.basename(urlsplit(module).path) or "module.wasm"
            inputs.append(input_source(module, folder))
            return f"{folder}/{name}"
        inputs.append(input_source(module, default_target))
        return default_target
    path = Path(module).expanduser()
    if path.is_file():
        inputs.append(inline_input(path, default_target, alias=module))
        return default_target
    raise click.BadParameter(
        f"{module!r} is neither a local file, a URI (ipfs://, s3://, http(s)://) nor a path "
        "under the target of an --input (e.g. -i https://host/main.wasm:/wasm then "
        "/wasm/main.wasm)",
        param_hint="MODULE",
    )


def build_wasm_job(
    module: str,
    args: Iterable[str],
    *,
    env: Iterable[str] = (),
    entry_point: str = "_start",
    import_modules: Iterable[str] = (),
    import_module_urls: Iterable[str] = (),
    task: TaskSettings | None = None,
    job: JobSettings | None = None,
) -> dict[str, Any]:
    """The job JSON of `bacalhau wasm run` (reference §4.1 wasm engine); `-e` goes to the
    task's Env."""
    task = task or TaskSettings()
    sources = [parse_input(item) for item in task.inputs]
    entry = resolve_module(module, sources, f"/wasm/{Path(module).name}")
    imports = [
        resolve_module(item, sources, f"/wasm/imports/{Path(item).name}")
        for item in import_modules
    ]
    imports += [
        resolve_module(url, sources, f"/wasm/imports/{i}/module.wasm", f"/wasm/imports/{i}")
        for i, url in enumerate(import_module_urls)
        if _is_url(url, "--import-module-urls")
    ]
    params: dict[str, Any] = {
        "EntryModule": entry,
        "Entrypoint": entry_point,
        "Parameters": list(args),
    }
    if imports:
        params["ImportModules"] = imports
    engine = {"Type": "wasm", "Params": params}
    built = build_task(engine, task, sources=sources, env=parse_env(env))
    return build_job(built, job or JobSettings())


def _is_url(value: str, flag: str) -> bool:
    if not value.lower().startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r} is not an http(s):// URL", param_hint=flag)
    return True


# ---------------------------------------------------------------- docker jobs


def split_list_flag(values: Iterable[str]) -> list[str]:
    """A repeatable flag whose items may also be comma separated (`--entrypoint /bin/sh,-c`),
    as Bacalhau's string-slice flags read them."""
    return [part for item in values for part in item.split(",") if part != ""]


def build_docker_job(
    image: str,
    args: Iterable[str],
    *,
    env: Iterable[str] = (),
    entrypoint: Iterable[str] = (),
    workdir: str = "",
    task: TaskSettings | None = None,
    job: JobSettings | None = None,
) -> dict[str, Any]:
    """The job JSON of `bacalhau docker run` (reference §4.1 docker engine). Every engine param
    is written, empty ones included, as Bacalhau's builder does; `-e` goes to the engine's
    `EnvironmentVariables` (`["K=V"]`, merged with the task Env on the node)."""
    image = image.strip()
    if not image:
        raise click.BadParameter("the image name must not be empty", param_hint="IMAGE")
    if workdir and not workdir.startswith("/"):
        raise click.BadParameter(
            f"{workdir!r} is not an absolute path inside the container (e.g. /work)",
            param_hint="--workdir",
        )
    engine = {
        "Type": "docker",
        "Params": {
            "Image": image,
            "Entrypoint": split_list_flag(entrypoint),
            "Parameters": list(args),
            "EnvironmentVariables": [f"{k}={v}" for k, v in env_items(env)],
            "WorkingDirectory": workdir,
        },
    }
    return build_job(build_task(engine, task or TaskSettings()), job or JobSettings())
