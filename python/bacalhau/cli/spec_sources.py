"""Inputs, outputs and publishers of the run commands, from their flags: `-i` URIs and
shorthands (`ipfs://CID`, `s3://bucket/key,opt=...`, `https://...`, `file:` and local paths sent
inline), `-o name:/path` result paths and `-p local|ipfs|noop|s3://...` publishers, as the
InputSource, ResultPath and SpecConfig wire dicts of reference §2. Pure functions that raise
`click.BadParameter` naming the flag and saying what to write instead.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import click

# The API body limit is 10 MB and base64 grows data by a third.
MAX_INLINE_BYTES = 7 * 1000 * 1000
DEFAULT_INPUT_TARGET = "/inputs"


def split_top_level(text: str) -> list[str]:
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
        uri, *rest = split_top_level(text)
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
