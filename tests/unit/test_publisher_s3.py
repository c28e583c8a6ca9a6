"""The `s3` publisher, the requester's presigning of `s3` results and `job get`'s S3 downloads,
against a real S3 protocol server (moto_server on 127.0.0.1); config redaction of AWS keys."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from bacalhau import _native, s3client
from bacalhau.cli.s3results import S3DownloadError, download_presigned, download_s3
from bacalhau.config import Config
from bacalhau.content import results_cid
from bacalhau.errors import PublisherError
from bacalhau.models import Execution, SpecConfig
from bacalhau.publishers import Publisher
from bacalhau.publishers.s3 import S3Publisher, render_key
from tests.factories import make_execution, make_job

pytestmark = pytest.mark.unit


def make_results(root: Path) -> Path:
    files = {"stdout": b"hello\n", "stderr": b"", "exitCode": b"0",
             "outputs/count.txt": b"1 2 3\n", "outputs/.hidden": b"dot\n",
             "outputs/nested/deep.bin": bytes(range(256)) * 50}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "empty").mkdir()
    return root


def execution_for(params: dict[str, Any]) -> Execution:
    job = make_job(engine="wasm", publisher="s3")
    job.task.publisher = SpecConfig("s3", params)
    execution = make_execution(job, "n-node1")
    execution.job = job  # as the compute node holds it
    return execution


def unpack_cid(archive: Path, into: Path) -> str:
    into.mkdir()
    _native.unpack(str(archive), str(into))
    return results_cid(into)


def test_protocol_check_and_keys() -> None:
    pub = S3Publisher("n-1")
    assert isinstance(pub, Publisher) and pub.type == "s3" and pub.is_installed()
    assert pub.check(SpecConfig("s3", {"bucket": "b", "key": "k"})) == []
    problems = pub.check(SpecConfig("s3", {"Bucket": "", "Encoding": "zip"}))
    assert any("Params.Bucket" in p for p in problems)
    assert any("Params.Key" in p for p in problems)
    assert any('Encoding "zip"' in p for p in problems)
    stamp = time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, 0)) - time.timezone
    assert render_key("r/{jobID}/{executionID}/{nodeID}/{date}-{time}", job_id="j-1",
                      execution_id="e-2", node_id="n-3", now=stamp) == \
        "r/j-1/e-2/n-3/20260304-050607"


async def test_gzip_publish_uploads_one_archive_with_the_results_cid(
        s3: Any, tmp_path: Path) -> None:
    bucket = s3.bucket("out")
    results = make_results(tmp_path / "results")
    execution = execution_for({"Bucket": bucket, "Key": "res/{jobID}/{executionID}",
                               "Endpoint": s3.endpoint, "Region": "us-east-1"})
    published = await S3Publisher().publish(execution, results)
    key = f"res/{execution.job_id}/{execution.id}.tar.gz"
    assert published.type == "s3"
    assert published.params["Bucket"] == bucket and published.params["Key"] == key
    assert published.params["Endpoint"] == s3.endpoint
    assert s3.keys(bucket) == [key]
    body = s3.get(bucket, key)
    assert published.params["ChecksumSHA256"] == base64.b64encode(
        hashlib.sha256(body).digest()).decode()
    archive = tmp_path / "got.tar.gz"
    archive.write_bytes(body)
    assert unpack_cid(archive, tmp_path / "unpacked") == results_cid(results)


async def test_plain_publish_and_download_rebuild_the_same_tree(s3: Any,
                                                                tmp_path: Path) -> None:
    bucket = s3.bucket("plain")
    results = make_results(tmp_path / "results")
    execution = execution_for({"Bucket": bucket, "Key": "p/{executionID}",
                               "Encoding": "plain", "Endpoint": s3.endpoint})
    published = await S3Publisher().publish(execution, results)
    prefix = f"p/{execution.id}/"
    assert published.params["Key"] == prefix
    assert s3.keys(bucket) == sorted(prefix + k for k in (
        "stdout", "stderr", "exitCode", "outputs/count.txt", "outputs/.hidden",
        "outputs/nested/deep.bin", "empty/"))
    assert s3.get(bucket, prefix + "outputs/count.txt") == b"1 2 3\n"
    # `job get` without a presigned URL: boto3, packed like any other download
    archive = download_s3(SpecConfig("s3", published.params), tmp_path / "dl" / "r.tar.gz")
    assert unpack_cid(archive, tmp_path / "unpacked") == results_cid(results)


async def test_upload_to_a_missing_bucket_fails_clearly(s3: Any, tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    execution = execution_for({"Bucket": "no-such-bucket-y", "Key": "k",
                               "Endpoint": s3.endpoint})
    with pytest.raises(PublisherError, match=r"s3://no-such-bucket-y/k\.tar\.gz") as err:
        await S3Publisher().publish(execution, results)
    assert "NoSuchBucket" in str(err.value)
    assert "credentials" in err.value.hint


async def published_gzip(s3: Any, tmp_path: Path) -> tuple[SpecConfig, Path]:
    bucket = s3.bucket("pre")
    results = make_results(tmp_path / "results")
    execution = execution_for({"Bucket": bucket, "Key": "r", "Endpoint": s3.endpoint})
    published = await S3Publisher().publish(execution, results)
    published.params["CID"] = results_cid(results)
    return published, results


async def test_requester_presigns_gzip_results_with_credentials(s3: Any,
                                                                tmp_path: Path) -> None:
    published, _ = await published_gzip(s3, tmp_path)
    plain = SpecConfig("s3", {"Bucket": "b", "Key": "p/", "Endpoint": s3.endpoint})
    other = SpecConfig("urlDownload", {"URL": "http://127.0.0.1:1/x.tar.gz"})
    [signed, same_plain, same_other] = s3client.presign_results([published, plain, other],
                                                                Config())
    assert (same_plain, same_other) == (plain, other)
    assert signed.type == "s3PreSigned"
    assert signed.params["SourceSpec"] == published.params
    assert signed.params["Managed"] is False
    url = signed.params["PreSignedURL"]
    assert url.startswith(f"{s3.endpoint}/{published.params['Bucket']}/r.tar.gz?")
    assert "X-Amz-Expires=3600" in url and "X-Amz-Signature=" in url
    archive = await download_presigned(url, tmp_path / "dl" / "r.tar.gz")
    assert unpack_cid(archive, tmp_path / "unpacked") == published.params["CID"]
    # an object gone from the bucket (moto checks no signatures): a clear message
    with pytest.raises(S3DownloadError, match="presigned S3 result answered 404"):
        await download_presigned(url.replace("/r.tar.gz?", "/gone.tar.gz?"),
                                 tmp_path / "bad.tar.gz")


async def test_presigning_off_or_without_credentials_keeps_s3_results(
        s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    published, _ = await published_gzip(s3, tmp_path)
    disabled = Config({"Publishers": {"Types": {"S3": {"PreSignedURLDisabled": True}}}})
    assert s3client.presign_results([published], disabled) == [published]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    s3client.reset()
    assert s3client.presign_results([published], Config()) == [published]
    # and `job get` then needs credentials of its own: it says so
    with pytest.raises(S3DownloadError, match="no AWS credentials"):
        download_s3(published, tmp_path / "x.tar.gz")


def test_agent_config_redacts_aws_credentials() -> None:
    config = Config({"Aws": {"AccessKeyID": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t",
                             "SessionToken": "tok", "Region": "eu-west-1",
                             "Credentials": {"aws_access_key_id": "AKIA2",
                                             "aws_secret_access_key": "sec2"}}})
    redacted = config.redacted()["Aws"]
    assert redacted["AccessKeyID"] == redacted["SecretAccessKey"] == "********"
    assert redacted["SessionToken"] == "********"
    assert set(redacted["Credentials"].values()) == {"********"}
    assert redacted["Region"] == "eu-west-1"
    text = repr(config.redacted())
    assert "AKIA" not in text and "s3cr3t" not in text and "sec2" not in text
