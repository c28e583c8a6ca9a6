"""`job get` for S3 results (reference §4.3/§4.4): `s3PreSigned` results by a plain HTTP GET of
their PreSignedURL, `s3` results (no presigned URL: the requester had no credentials or
presigning is off) with boto3 and this machine's AWS credential chain.

Every download ends as one `.tar.gz` file, like the other result types, so `job get` verifies
and merges them the same way: a gzip result is the object itself; a `plain` result (a key
prefix ending in `/`) is fetched into a scratch folder (`<path>/` marker objects become empty
directories) and packed with the native packer.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import aiohttp
import yarl

from bacalhau.models import SpecConfig


class S3DownloadError(Exception):
    """An S3 result could not be fetched; the message says which and why; `status` is the
    HTTP status of a refusal (0 when there was no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def s3_source(result: dict[str, Any]) -> SpecConfig | None:
    """The `s3` result to fetch with boto3, or None for other result types."""
    if str(result.get("Type", "")).lower() != "s3":
        return None
    spec = SpecConfig("s3", dict(result.get("Params") or {}))
    if not spec.param("Bucket") or not spec.param("Key"):
        return None
    return spec


def s3_url(spec: SpecConfig) -> str:
    """`s3://bucket/key`: how messages and raw file names name an S3 result."""
    return f"s3://{spec.param('Bucket')}/{spec.param('Key')}"


def source_spec_cid(result: dict[str, Any]) -> str:
    """The CID inside an `s3PreSigned` result's SourceSpec (the published `s3` params)."""
    params = {str(k).lower(): v for k, v in (result.get("Params") or {}).items()}
    source = params.get("sourcespec")
    if not isinstance(source, dict):
        return ""
    return str({str(k).lower(): v for k, v in source.items()}.get("cid", "") or "")


async def download_presigned(url: str, dest: Path, *, timeout: float = 300.0) -> Path:
    """GET a presigned URL into `dest`: a fresh session (no API auth headers, which S3 would
    refuse) and the URL sent exactly as signed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.get(yarl.URL(url, encoded=True)) as resp,
    ):
        if resp.status >= 400:
            body = (await resp.text(errors="replace"))[:300]
            raise S3DownloadError(
                f"downloading a presigned S3 result answered {resp.status}: {body} "
                "(the URL may have expired: run `job get` again for a fresh one)", resp.status)
        with dest.open("wb") as fh:
            async for chunk in resp.content.iter_chunked(1 << 16):
                fh.write(chunk)
    return dest


def download_s3(spec: SpecConfig, dest: Path) -> Path:
    """Fetch an `s3` result into the `.tar.gz` file `dest` (blocking: run in a thread)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from bacalhau import _native, s3client

    client = s3client.client_for(spec)
    bucket, key = str(spec.param("Bucket")), str(spec.param("Key"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not key.endswith("/"):
            args: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version := spec.param("VersionID"):
                args["VersionId"] = str(version)
            body = client.get_object(**args)["Body"]
            with dest.open("wb") as fh:
                for chunk in body.iter_chunks(1 << 20):
                    fh.write(chunk)
            return dest
        scratch = Path(tempfile.mkdtemp(prefix="s3-result-", dir=dest.parent))
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=key):
                for item in page.get("Contents") or []:
                    rel = PurePosixPath(item["Key"][len(key):])
                    if not rel.parts or any(p in ("..", ".") for p in rel.parts):
                        continue
                    target = scratch.joinpath(*rel.parts)
                    if item["Key"].endswith("/"):
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, item["Key"], str(target))
            _native.pack_dir(str(scratch), str(dest))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return dest
    except NoCredentialsError as exc:
        raise S3DownloadError(
            f"cannot download {s3_url(spec)}: no AWS credentials on this machine (set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile), or ask the requester's "
            "operator to enable presigned result URLs") from exc
    except (ClientError, BotoCoreError) as exc:
        raise S3DownloadError(
            f"cannot download {s3_url(spec)}: {s3client.error_text(exc)}") from exc
