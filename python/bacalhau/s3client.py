"""What the S3 input source, the S3 publisher, the requester's result presigning and `job get`
share: boto3 clients for an `Endpoint`/`Region` pair, credentials from the standard AWS chain
(env, shared files, SSO, container/instance roles; never read, logged or echoed by us), and the
presigned form of `s3` results (reference §4.3, `s3PreSigned`).

boto3 is blocking: callers run these functions in a worker thread (`asyncio.to_thread`).
Clients are made once per (endpoint, region) and shared (boto3 clients are thread-safe; their
creation is not, hence the lock). A custom `Endpoint` (MinIO, moto, Ceph) gets path-style
addressing, so bucket names need no DNS.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import time
from typing import Any

from bacalhau.models import SpecConfig

DEFAULT_REGION = "us-east-1"
# how long "does this process have AWS credentials" is remembered: resolving the chain on a
# machine without any walks to the instance-metadata endpoint, which takes a second or two.
CREDENTIALS_CACHE_SECONDS = 300.0

# botocore's debug logs carry signed request headers (session tokens among them): keep them
# out of our logs whatever level the node logs at.
for _name in ("boto3", "botocore", "s3transfer", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}
_credentials_checked: tuple[float, bool] | None = None


def boto3_available() -> bool:
    """True when boto3 is installed (the S3 provider and publisher are offered only then);
    looked up without importing it, which would cost a node's start a few hundred ms."""
    return importlib.util.find_spec("boto3") is not None


def region_of(region: str | None) -> str:
    return str(region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
               or DEFAULT_REGION)


def client(endpoint: str | None = None, region: str | None = None) -> Any:
    """A (shared) boto3 S3 client for `endpoint` (None = AWS) in `region`."""
    import boto3
    from botocore.config import Config as BotoConfig

    key = (str(endpoint or ""), region_of(region))
    with _lock:
        found = _clients.get(key)
        if found is not None:
            return found
        options: dict[str, Any] = {"signature_version": "s3v4",
                                   "retries": {"max_attempts": 3, "mode": "standard"},
                                   "connect_timeout": 10, "read_timeout": 60}
        if key[0]:
            options["s3"] = {"addressing_style": "path"}
        made = boto3.session.Session().client(
            "s3", endpoint_url=key[0] or None, region_name=key[1],
            config=BotoConfig(**options))
        _clients[key] = made
        return made


def client_for(spec: SpecConfig) -> Any:
    """The client for a SpecConfig's `Endpoint` and `Region` params."""
    return client(spec.param("Endpoint") or None, spec.param("Region") or None)


def reset() -> None:
    """Forget cached clients and the credentials answer (tests change the environment)."""
    global _credentials_checked
    with _lock:
        _clients.clear()
        _credentials_checked = None


def has_credentials() -> bool:
    """True when the standard AWS credential chain resolves to something (cached a while)."""
    global _credentials_checked
    now = time.monotonic()
    checked = _credentials_checked
    if checked is not None and now - checked[0] < CREDENTIALS_CACHE_SECONDS:
        return checked[1]
    try:
        import boto3

        found = boto3.session.Session().get_credentials() is not None
    except Exception:  # no boto3, a broken profile: no credentials to sign with
        found = False
    _credentials_checked = (now, found)
    return found


def error_text(exc: BaseException) -> str:
    """A short description of a boto3/botocore error (code and message, never credentials)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        code, message = err.get("Code", ""), err.get("Message", "")
        if code or message:
            return f"{code}: {message}".strip(": ")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_gzip_result(spec: SpecConfig) -> bool:
    """An `s3` result published as one `.tar.gz` object (not a `plain` prefix)."""
    key = str(spec.param("Key") or "")
    return spec.type.lower() == "s3" and key.endswith((".tar.gz", ".tgz"))


def presign_result(spec: SpecConfig, expires_in: int) -> SpecConfig:
    """`{"Type": "s3PreSigned", "Params": {"SourceSpec", "PreSignedURL", "Managed"}}` for a
    gzip `s3` result: a GET URL signed with this process's credentials (blocking, local)."""
    params: dict[str, Any] = {"Bucket": spec.param("Bucket"), "Key": spec.param("Key")}
    if version := spec.param("VersionID"):
        params["VersionId"] = version
    url = client_for(spec).generate_presigned_url(
        "get_object", Params=params, ExpiresIn=int(expires_in))
    return SpecConfig(type="s3PreSigned", params={
        "SourceSpec": dict(spec.params), "PreSignedURL": url, "Managed": False})


def presign_results(results: list[SpecConfig], config: Any) -> list[SpecConfig]:
    """The requester's `/results` answer: gzip `s3` results presigned when this process has
    AWS credentials and `Publishers.Types.S3.PreSignedURLDisabled` is not set; others as
    they are. Blocking: run in a thread."""
    if not any(is_gzip_result(r) for r in results):
        return results
    if _truthy(config.get("Publishers.Types.S3.PreSignedURLDisabled", False)):
        return results
    if not boto3_available() or not has_credentials():
        return results
    expires = int(config.duration("Publishers.Types.S3.PreSignedURLExpiration"))
    out = []
    for result in results:
        if is_gzip_result(result):
            try:
                result = presign_result(result, expires)
            except Exception:  # leave it as it is: `job get` can still use its own creds
                pass
        out.append(result)
    return out


async def presign_results_async(results: list[SpecConfig], config: Any) -> list[SpecConfig]:
    """`presign_results` on a worker thread, skipped when no result is a gzip `s3` one."""
    if not any(is_gzip_result(r) for r in results):
        return results
    return await asyncio.to_thread(presign_results, results, config)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
