"""The `s3` publisher: an execution's `results/` directory uploaded to an S3 bucket.

Params (reference §4.3, case-insensitive): `Bucket` and `Key` (required), `Endpoint`,
`Region`, `Encoding` (`gzip`, the default, or `plain`). `Key` may hold `{jobID}`,
`{executionID}`, `{nodeID}`, `{date}` (YYYYMMDD) and `{time}` (HHMMSS, UTC).

* gzip: the results dir is packed by the native packer into one `.tar.gz` object (the suffix
  is appended when the key lacks it), uploaded with a SHA-256 checksum.
* plain: every file is uploaded as `<Key>/<path relative to results/>` (an empty directory
  as a `<path>/` marker object, so downloads rebuild the same tree and CID).

The result is `{"Type": "s3", "Params": {Bucket, Key, Region, Endpoint, VersionID?,
ChecksumSHA256?}}` (the runner adds `CID`); the requester may turn a gzip result into a
presigned URL (`bacalhau.s3client.presign_results`). Credentials come from the standard AWS
chain; boto3 runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bacalhau import _native, s3client
from bacalhau.errors import MergeError, PublisherError
from bacalhau.models import Execution, SpecConfig

ENCODINGS = ("gzip", "plain")
PLACEHOLDERS = ("{jobID}", "{executionID}", "{nodeID}", "{date}", "{time}")


def render_key(template: str, *, job_id: str, execution_id: str, node_id: str,
               now: float | None = None) -> str:
    """`Key` with its placeholders filled in (`{date}` YYYYMMDD, `{time}` HHMMSS, UTC)."""
    stamp = time.gmtime(time.time() if now is None else now)
    values = {
        "{jobID}": job_id, "{executionID}": execution_id, "{nodeID}": node_id,
        "{date}": time.strftime("%Y%m%d", stamp), "{time}": time.strftime("%H%M%S", stamp),
    }
    out = template
    for name, value in values.items():
        out = out.replace(name, value)
    return out


class S3Publisher:
    """Uploads results with boto3 (standard AWS credential chain)."""

    type = "s3"

    def __init__(self, node_id: str = "") -> None:
        self.node_id = node_id

    def is_installed(self) -> bool:
        return s3client.boto3_available()

    def check(self, spec: SpecConfig) -> list[str]:
        problems: list[str] = []
        for name in ("Bucket", "Key"):
            value = spec.param(name)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"s3 publisher needs Params.{name}")
        encoding = str(spec.param("Encoding") or "gzip").lower()
        if encoding not in ENCODINGS:
            problems.append(f's3 publisher Encoding "{spec.param("Encoding")}" is not one of '
                            + ", ".join(ENCODINGS))
        return problems

    async def publish(self, execution: Execution, results_dir: Path) -> SpecConfig:
        spec = execution.job.task.publisher if execution.job and execution.job.tasks else None
        if spec is None:
            raise PublisherError(f"execution {execution.id} has no publisher spec")
        problems = self.check(spec)
        if problems:
            raise PublisherError(f"cannot publish results of execution {execution.id}: "
                                 + "; ".join(problems))
        if not Path(results_dir).is_dir():
            raise PublisherError(f"results of execution {execution.id} are missing: "
                                 f"{results_dir} is not a directory")
        key = render_key(str(spec.param("Key")).strip(), job_id=execution.job_id,
                         execution_id=execution.id, node_id=execution.node_id or self.node_id)
        if str(spec.param("Encoding") or "gzip").lower() == "plain":
            key = key if key.endswith("/") else key + "/"
            extra = await asyncio.to_thread(self._upload_plain, spec, key, Path(results_dir),
                                            execution.id)
        else:
            if not key.endswith(".tar.gz"):
                key += ".tar.gz"
            extra = await asyncio.to_thread(self._upload_gzip, spec, key, Path(results_dir),
                                            execution.id)
        params: dict[str, Any] = {"Bucket": str(spec.param("Bucket")), "Key": key}
        for name in ("Region", "Endpoint"):
            if value := spec.param(name):
                params[name] = value
        params.update(extra)
        return SpecConfig(type="s3", params=params)

    # -- blocking parts (worker threads) -------------------------------------------------------

    def _failed(self, spec: SpecConfig, key: str, execution_id: str,
                exc: Exception) -> PublisherError:
        endpoint = spec.param("Endpoint")
        return PublisherError(
            f"could not upload results of execution {execution_id} to "
            f"s3://{spec.param('Bucket')}/{key}" + (f" at {endpoint}" if endpoint else "")
            + f": {s3client.error_text(exc)}",
            hint="check the bucket, region and endpoint, and that this node's AWS credentials "
                 "may write there")

    def _upload_gzip(self, spec: SpecConfig, key: str, results_dir: Path,
                     execution_id: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        fd, name = tempfile.mkstemp(prefix=f".{execution_id}-", suffix=".tar.gz")
        os.close(fd)
        archive = Path(name)
        try:
            try:
                _native.pack_dir(str(results_dir), str(archive))
            except (MergeError, OSError) as exc:
                raise PublisherError(
                    f"could not pack results of execution {execution_id}: {exc}",
                    hint="results may not contain links that point outside the results dir",
                ) from exc
            try:
                with archive.open("rb") as f:
                    answer = s3client.client_for(spec).put_object(
                        Bucket=str(spec.param("Bucket")), Key=key, Body=f,
                        ContentType="application/gzip", ChecksumAlgorithm="SHA256")
            except (ClientError, BotoCoreError) as exc:
                raise self._failed(spec, key, execution_id, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                archive.unlink()
        extra: dict[str, Any] = {}
        if answer.get("VersionId"):
            extra["VersionID"] = answer["VersionId"]
        if answer.get("ChecksumSHA256"):
            extra["ChecksumSHA256"] = answer["ChecksumSHA256"]
        return extra

    def _upload_plain(self, spec: SpecConfig, prefix: str, results_dir: Path,
                      execution_id: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        client = s3client.client_for(spec)
        bucket = str(spec.param("Bucket"))
        for path in sorted(results_dir.rglob("*")):
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(results_dir.resolve()):
                    raise PublisherError(
                        f"could not publish results of execution {execution_id}: "
                        f"{path.relative_to(results_dir)} links outside the results dir")
            rel = path.relative_to(results_dir).as_posix()
            if path.is_dir() and not any(path.iterdir()):
                key = prefix + rel + "/"  # a marker, so an empty result dir comes back too
                body: Any = b""
            elif path.is_file():
                key, body = prefix + rel, None
            else:
                continue
            try:
                if body is not None:
                    client.put_object(Bucket=bucket, Key=key, Body=body)
                    continue
                with path.open("rb") as f:
                    client.put_object(Bucket=bucket, Key=key, Body=f,
                                      ChecksumAlgorithm="SHA256")
            except (ClientError, BotoCoreError) as exc:
                raise self._failed(spec, key, execution_id, exc) from exc
        return {}
