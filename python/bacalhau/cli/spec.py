"""Job specs built on the client side: loading `job run` files and assembling the jobs of
`wasm run` and `docker run` from their flags.

Both run commands share the job and task builders (`JobSettings`/`TaskSettings` ->
`build_job`/`build_task`); only the engine params differ (`build_wasm_job`,
`build_docker_job`). Everything here is a pure function over plain wire dicts (reference §2),
raising `click.UsageError`/`click.BadParameter` with a message that says what to change.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import orjson
import yaml

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

# The API body limit is 10 MB and base64 grows data by a third.
MAX_INLINE_BYTES = 7 * 1000 * 1000
DEFAULT_INPUT_TARGET = "/inputs"


# ---------------------------------------------------------------- job run files


def parse_job_document(text: str, source: str) -> dict[str, Any]:
    """Parse a JSON or YAML job spec and check its top-level keys."""
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
        for part in _split_top_level(item):
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


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses; drops empty parts."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


_SET_OP = re.compile(r"^([^\s()!=<>]+)\s+(in|notin)\s*\((.*)\)$")
_BIN_OP = re.compile(r"^([^\s()!=<>]+)\s*(==|!=|=|>|<)\s*([^\s()]*)$")
_KEY = re.compile(r"^!?\s*[^\s()!=<>,]+$")


def parse_selector(text: str) -> list[dict[str, Any]]:
    """A Kubernetes label selector (`a=b,c!=d,e in (x,y),!f,g>3`) into job Constraints."""
    out: list[dict[str, Any]] = []
    for part in _split_top_level(text):
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


def parse_output(value: str) -> dict[str, str]:
    """`-o name:/path` (or Bacalhau's `name=/path`) into a ResultPath."""
    name, sep, path = value.partition(":")
    if "=" in name or not sep:
        name, sep, path = value.partition("=")
    if not sep or not name or not path.startswith("/"):
        raise click.BadParameter(
            f"{value!r} is not NAME:/absolute/path (e.g. outputs:/outputs)", param_hint="--output"
        )
    return {"Name": name, "Path": path}


def data_url(path: Path) -> str:
    """RFC 2397 data URL of a local file, for an `inline` input."""
    size = path.stat().st_size
    if size > MAX_INLINE_BYTES:
        raise click.BadParameter(
            f"{path} is {size / 1e6:.1f} MB, too large to send inline "
            f"(max {MAX_INLINE_BYTES / 1e6:.0f} MB); serve it over HTTP and pass -i https://...",
        )
    mime = "application/wasm" if path.suffix == ".wasm" else "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def inline_input(path: Path, target: str, alias: str = "") -> dict[str, Any]:
    return {
        "Source": {"Type": "inline", "Params": {"URL": data_url(path)}},
        "Alias": alias or str(path),
        "Target": target,
    }


def _split_shorthand(spec: str) -> tuple[str, str]:
    """`URI:/target` into (URI, target); a bare URI gets the default target."""
    scheme, sep, rest = spec.partition("://")
    head, body = (scheme + sep, rest) if sep else ("", spec)
    uri, colon, target = body.rpartition(":")
    if colon and target.startswith("/") and uri:
        return head + uri, target
    return spec, DEFAULT_INPUT_TARGET


_TRAILING_KEY = re.compile(r"^\s*(opt|option|dst|destination|target)=", re.IGNORECASE)


def parse_input(spec: str) -> dict[str, Any]:
    """`-i` value (`src=URI,dst=/path,opt=k=v`, or `URI[:/path]` optionally followed by
    `,opt=k=v` / `,dst=/path` parts) into an InputSource."""
    opts: dict[str, str] = {}
    if spec.startswith(("src=", "source=")):
        uri, target = "", DEFAULT_INPUT_TARGET
        parts = spec.split(",")
    else:
        # trailing key=value parts; commas elsewhere (e.g. in a URL's query) stay in the URI
        parts = spec.split(",")
        tail: list[str] = []
        while len(parts) > 1 and _TRAILING_KEY.match(parts[-1]):
            tail.insert(0, parts.pop())
        uri, target = _split_shorthand(",".join(parts))
        parts = tail
    for part in parts:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key in ("src", "source"):
            uri = value
        elif key in ("dst", "destination", "target"):
            target = value
        elif key in ("opt", "option"):
            okey, osep, ovalue = value.partition("=")
            if not osep:
                raise click.BadParameter(f"option {value!r} is not k=v", param_hint="--input")
            opts[okey.strip().lower()] = ovalue.strip()
        else:
            raise click.BadParameter(
                f"unknown key {key!r} in {spec!r}; use src=, dst= and opt=",
                param_hint="--input",
            )
    if not uri:
        raise click.BadParameter(f"{spec!r} names no source (src=...)", param_hint="--input")
    if not target.startswith("/"):
        raise click.BadParameter(
            f"target {target!r} must be an absolute path", param_hint="--input"
        )
    return input_source(uri, target, opts)


def input_source(uri: str, target: str, opts: dict[str, str] | None = None) -> dict[str, Any]:
    opts = opts or {}
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme == "file":
        path = uri[len("file://") :]
        if not path.startswith("/"):
            raise click.BadParameter(
                f"{uri!r}: a file:// URI needs an absolute path (file:///data)",
                param_hint="--input",
            )
        params: dict[str, Any] = {"SourcePath": path}
        if opts.get("rw", "").lower() in ("true", "1", "yes"):
            params["ReadWrite"] = True
        return {"Source": {"Type": "local", "Params": params}, "Alias": uri, "Target": target}
    if scheme in ("http", "https"):
        return {
            "Source": {"Type": "urlDownload", "Params": {"URL": uri}},
            "Alias": uri,
            "Target": target,
        }
    if scheme == "s3":
        return {"Source": s3_source(uri, opts), "Alias": uri, "Target": target}
    if scheme == "ipfs":
        cid = uri[len("ipfs://") :].strip("/")
        if not cid or "/" in cid:
            raise click.BadParameter(
                f"{uri!r}: an IPFS input is ipfs://CID (e.g. ipfs://QmX...)", param_hint="--input"
            )
        return {"Source": {"Type": "ipfs", "Params": {"CID": cid}}, "Alias": uri, "Target": target}
    if scheme:
        raise click.BadParameter(
            f"input scheme {scheme!r} is not supported yet; use ipfs://, s3://, file://, "
            "http(s):// or a local file path",
            param_hint="--input",
        )
    path = Path(uri).expanduser()
    if path.is_file():
        return inline_input(path, target, alias=uri)
    if path.is_dir():
        raise click.BadParameter(
            f"{uri!r} is a directory; only files are sent inline. "
            f"Mount it from the node with -i file://{path.resolve()}:{target}",
            param_hint="--input",
        )
    raise click.BadParameter(
        f"{uri!r} is neither a local file nor a file:// or http(s):// URI", param_hint="--input"
    )


# `-i s3://...,opt=k=v` options and the S3 source Params they set (reference §4.2).
_S3_INPUT_OPTS = {
    "endpoint": "Endpoint",
    "region": "Region",
    "versionid": "VersionID",
    "checksum-256": "ChecksumSHA256",
    "checksumsha256": "ChecksumSHA256",
    "filter": "Filter",
}
# `-p s3://...,opt=k=v` options and the S3 publisher Params they set (reference §4.3).
_S3_PUBLISHER_OPTS = {"endpoint": "Endpoint", "region": "Region", "encoding": "Encoding"}


def _bucket_key(uri: str, flag: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise click.BadParameter(f"{uri!r} names no bucket (s3://bucket/key)", param_hint=flag)
    return bucket, key


def _s3_params(opts: dict[str, str], known: dict[str, str], uri: str, flag: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in opts.items():
        wire = known.get(name.lower())
        if wire is None:
            raise click.BadParameter(
                f"{uri!r}: unknown option {name!r}; S3 takes " + ", ".join(
                    sorted({k for k in known if k != "checksumsha256"})
                ),
                param_hint=flag,
            )
        params[wire] = value
    return params


def s3_source(uri: str, opts: dict[str, str]) -> dict[str, Any]:
    """`s3://bucket/key` plus `opt=` options into an `s3` input SpecConfig. A key ending in
    `/` or `*` is a prefix (every object under it)."""
    bucket, key = _bucket_key(uri, "--input")
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    params.update(_s3_params(opts, _S3_INPUT_OPTS, uri, "--input"))
    return {"Type": "s3", "Params": params}


PUBLISHER_NAMES = ("local", "ipfs", "noop")


def publisher_spec(value: str) -> dict[str, Any]:
    """`-p` value into a task Publisher: `local`, `ipfs`, `noop`, or
    `s3://bucket/key[,opt=endpoint=...,opt=region=...,opt=encoding=plain|gzip]`."""
    text = value.strip()
    lowered = text.lower()
    if lowered in PUBLISHER_NAMES:
        return {"Type": lowered}
    if lowered.startswith("s3://"):
        uri, *rest = _split_top_level(text)
        opts: dict[str, str] = {}
        for part in rest:
            key, _, option = part.partition("=")
            okey, osep, ovalue = option.partition("=")
            if key.strip().lower() not in ("opt", "option") or not osep:
                raise click.BadParameter(
                    f"{part!r} in {value!r} is not opt=key=value", param_hint="--publisher"
                )
            opts[okey.strip()] = ovalue.strip()
        bucket, key = _bucket_key(uri, "--publisher")
        if not key:
            raise click.BadParameter(
                f"{value!r} names no key; use s3://bucket/key (placeholders such as "
                "{jobID} and {executionID} are filled in by the node)",
                param_hint="--publisher",
            )
        params = {"Bucket": bucket, "Key": key}
        params.update(_s3_params(opts, _S3_PUBLISHER_OPTS, uri, "--publisher"))
        encoding = params.get("Encoding", "")
        if encoding and encoding.lower() not in ("gzip", "plain"):
            raise click.BadParameter(
                f"encoding {encoding!r} is not gzip or plain", param_hint="--publisher"
            )
        return {"Type": "s3", "Params": params}
    raise click.BadParameter(
        f"{value!r} is not a publisher; use local, ipfs, noop or s3://bucket/key",
        param_hint="--publisher",
    )


_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_:|-]")


def parse_labels(values: Iterable[str]) -> dict[str, str]:
    """`-l` items into job Labels. Each item (or comma-separated part) is `key=value` or a bare
    `key` (empty value); characters outside `a-zA-Z0-9_:|-` are stripped from both, as
    Bacalhau's CLI does."""
    out: dict[str, str] = {}
    for item in values:
        for part in _split_top_level(item):
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
