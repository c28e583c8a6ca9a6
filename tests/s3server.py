"""A real S3 protocol server for the S3 tests: `moto_server` (the `test` extra) on 127.0.0.1.

`scripts/test.sh` starts one (scripts/start_s3_server.sh) and exports
`BACALHAU_TEST_S3_ENDPOINT`; without it the `s3_endpoint` fixture starts its own on a free port,
so a plain `pytest` works too. `S3Env` (the `s3` fixture) sets fake AWS credentials in the
environment (moto checks none; `bacalhau serve` children inherit them) and makes buckets with
unique names, so tests sharing the server never see each other's objects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, wait_until

ENDPOINT_ENV = "BACALHAU_TEST_S3_ENDPOINT"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-never-logged",
    "AWS_SESSION_TOKEN": "fake-token-never-logged",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    # no shared config or credentials files of the machine leak into the tests
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _answers(endpoint: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(endpoint + "/", timeout=1) as resp:
        return resp.status == 200


def start_moto(log_dir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `moto_server` on a free 127.0.0.1 port; returns (endpoint, process)."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
        "moto_server")
    if exe is None:
        pytest.fail("moto_server is not installed: pip install -e '.[test]' (moto[server])")
    port = free_port()
    log = open(log_dir / "moto.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(endpoint), timeout=60, what=f"moto_server on {endpoint}")
    except BaseException:
        proc.kill()
        raise
    return endpoint, proc


@dataclass
class S3Env:
    """The test's view of the S3 server: a boto3 client and per-test buckets."""

    endpoint: str
    client: Any
    buckets: list[str] = field(default_factory=list)

    def bucket(self, stem: str = "b") -> str:
        name = f"{stem}-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def put(self, bucket: str, key: str, body: bytes | str, **extra: Any) -> dict[str, Any]:
        data = body.encode() if isinstance(body, str) else body
        return self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)

    def get(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix)
        return sorted(o["Key"] for p in pages for o in p.get("Contents") or [])
