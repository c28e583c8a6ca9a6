"""`bacalhau job get`: results downloaded from a fake publisher into raw/, then merged."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bacalhau import _native
from bacalhau.cli import results
from bacalhau.cli.main import cli
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, Reply, fake_api

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

RESULTS = f"/api/v1/orchestrator/jobs/{JOB_ID}/results"


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def serve_two_results(server: FakeBacalhau) -> list[bytes]:
    archives = [
        tar_gz({"stdout": b"one\n", "exitCode": b"0", "outputs/a.txt": b"A"}),
        tar_gz({"stdout": b"two\n", "exitCode": b"0", "outputs/b.txt": b"B"}),
    ]
    server.on("GET", "/e-1.tar.gz", Reply(body=archives[0]))
    server.on("GET", "/e-2.tar.gz", Reply(body=archives[1]))
    server.on(
        "GET",
        RESULTS,
        {
            "Items": [
                {"Type": "urlDownload", "Params": {"URL": f"{server.url}/e-1.tar.gz"}},
                {"Type": "urlDownload", "Params": {"URL": f"{server.url}/e-2.tar.gz"}},
            ],
            "NextToken": "",
        },
    )
    return archives


needs_merge = pytest.mark.skipif(
    not hasattr(_native, "merge_results"),
    reason="bacalhau._native.merge_results is not built yet (rust/merge)",
)


def run_cli(server: FakeBacalhau, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--api-port", str(server.port), *args])


@needs_merge
def test_job_get_downloads_and_merges_two_results(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    serve_two_results(fake_api)
    out = tmp_path / "out"
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "stdout").read_text() == "one\ntwo\n"
    assert (out / "outputs" / "a.txt").read_text() == "A"
    assert (out / "outputs" / "b.txt").read_text() == "B"
    assert not (out / "raw").exists()
    assert str(out) in result.output


def test_job_get_puts_each_download_in_raw_and_hands_them_to_the_merge(
    fake_api: FakeBacalhau, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archives = serve_two_results(fake_api)
    seen: dict[str, Any] = {}

    def fake_merge(paths: list[str], out_dir: str, raw: bool) -> list[str]:
        seen.update(
            contents=[Path(p).read_bytes() for p in paths],
            names=[Path(p).name for p in paths],
            parents={str(Path(p).parent) for p in paths},
            out_dir=out_dir,
            raw=raw,
        )
        return []

    monkeypatch.setattr(results, "merge_function", lambda: fake_merge)
    monkeypatch.chdir(tmp_path)
    result = run_cli(fake_api, "job", "get", JOB_ID)
    assert result.exit_code == 0, result.output
    assert seen["contents"] == archives
    assert seen["names"] == [
        f"127.0.0.1_{fake_api.port}_e-1.tar.gz",
        f"127.0.0.1_{fake_api.port}_e-2.tar.gz",
    ]
    assert seen["parents"] == {f"job-{JOB_ID}/raw"}
    assert (seen["out_dir"], seen["raw"]) == (f"job-{JOB_ID}", False)
    assert not (tmp_path / f"job-{JOB_ID}" / "raw").exists()  # downloads removed after merge


def test_job_get_raw_keeps_the_downloads(
    fake_api: FakeBacalhau, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_two_results(fake_api)
    monkeypatch.setattr(results, "merge_function", lambda: lambda paths, out, raw: [])
    result = run_cli(fake_api, "job", "get", JOB_ID, "--raw", "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "o" / "raw").exists()  # the fake merge extracted nothing


@needs_merge
def test_job_get_raw_keeps_each_result_apart(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    serve_two_results(fake_api)
    out = tmp_path / "o"
    result = run_cli(fake_api, "job", "get", JOB_ID, "--raw", "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in (out / "raw").iterdir())
    assert folders == [f"127.0.0.1_{fake_api.port}_e-1", f"127.0.0.1_{fake_api.port}_e-2"]
    assert (out / "raw" / folders[1] / "stdout").read_text() == "two\n"


@needs_merge
def test_job_get_real_conflict_writes_nothing_and_suggests_raw(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    same = tar_gz({"stdout": b"x\n", "outputs/a.txt": b"A"})
    fake_api.on("GET", "/e-1.tar.gz", Reply(body=same))
    fake_api.on("GET", "/e-2.tar.gz", Reply(body=same))
    fake_api.on(
        "GET",
        RESULTS,
        {
            "Items": [
                {"Type": "urlDownload", "Params": {"URL": f"{fake_api.url}/e-{i}.tar.gz"}}
                for i in (1, 2)
            ]
        },
    )
    out = tmp_path / "o"
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot merge results:")
    assert "outputs/a.txt" in result.stderr and "--raw" in result.stderr
    assert not (out / "outputs").exists() and not (out / "stdout").exists()


def test_job_get_merge_conflict_suggests_raw(
    fake_api: FakeBacalhau, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class MergeError(Exception):
        pass

    def conflicting(paths: list[str], out: str, raw: bool) -> list[str]:
        raise MergeError("outputs/a.txt exists in two results")  # no "Try --raw" here

    serve_two_results(fake_api)
    monkeypatch.setattr(results, "merge_function", lambda: conflicting)
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "Error: cannot merge results: outputs/a.txt exists in two results" in result.stderr
    assert "--raw" in result.stderr


def test_job_get_without_results_says_so(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    fake_api.on("GET", RESULTS, {"Items": [], "NextToken": ""})
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("No results found\n")
    assert f"bacalhau job logs {JOB_ID}" in result.output


EXECUTIONS = f"/api/v1/orchestrator/jobs/{JOB_ID}/executions"
NODE_ID = "12D3KooWNodeThatPublished"


def one_local_result(server: FakeBacalhau, url: str, execution_id: str = "e-1") -> None:
    """The job's one `local` result at `url`, published by execution `execution_id` on NODE_ID."""
    spec = {"Type": "urlDownload", "Params": {"URL": url}}
    server.on("GET", RESULTS, {"Items": [spec], "NextToken": ""})
    server.on("GET", EXECUTIONS, {"Items": [
        {"ID": "e-other", "NodeID": "12D3KooWSomeoneElse", "PublishedResult": {}},
        {"ID": execution_id, "NodeID": NODE_ID, "PublishedResult": spec}]})


def test_job_get_failed_download_names_the_execution_node_and_url(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    url = f"{fake_api.url}/gone.tar.gz"
    one_local_result(fake_api, url)
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: could not download the result of execution e-1 from compute node {NODE_ID} "
        f"(GET {url}): HTTP 404")
    assert "no longer holds this result" in result.stderr
    assert "-p s3://BUCKET/PREFIX or -p ipfs" in result.stderr
    assert not (tmp_path / "o").exists()  # nothing left behind


def test_job_get_with_the_result_server_down_does_not_blame_the_api(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    dead = free_port()
    url = f"http://127.0.0.1:{dead}/e-7.tar.gz"
    fake_api.on("GET", RESULTS, {"Items": [{"Type": "urlDownload", "Params": {"URL": url}}]})
    # the executions do not carry the spec: the execution id in the URL names it
    fake_api.on("GET", EXECUTIONS, {"Items": [{"ID": "e-7", "NodeID": NODE_ID}]})
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert (f"the result of execution e-7 from compute node {NODE_ID} (GET {url}): cannot "
            f"connect to 127.0.0.1:{dead}") in result.stderr
    assert f"compute node {NODE_ID} serves this result itself" in result.stderr
    assert "bring that node back" in result.stderr
    assert "API" not in result.stderr


def test_job_get_lists_every_failed_result_and_keeps_going_after_the_first(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    dead = free_port()
    items = [{"Type": "urlDownload", "Params": {"URL": f"http://127.0.0.1:{dead}/e-1.tar.gz"}},
             {"Type": "urlDownload", "Params": {"URL": f"{fake_api.url}/e-2.tar.gz"}},
             {"Type": "urlDownload", "Params": {"URL": f"{fake_api.url}/e-3.tar.gz"}}]
    fake_api.on("GET", RESULTS, {"Items": items})
    fake_api.on("GET", "/e-3.tar.gz", Reply(body=tar_gz({"stdout": b"three\n"})))
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 2 results could not be downloaded:\n")
    assert f"- could not download the result of an execution (GET http://127.0.0.1:{dead}/" \
           "e-1.tar.gz): cannot connect" in result.stderr
    assert f"(GET {fake_api.url}/e-2.tar.gz): HTTP 404" in result.stderr
    assert fake_api.calls("GET", "/e-3.tar.gz")  # fetched, then dropped with the rest
    assert not (tmp_path / "o").exists()


def test_result_downloads_do_not_carry_the_api_credentials(
    fake_api: FakeBacalhau, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_two_results(fake_api)
    monkeypatch.setenv("BACALHAU_API_KEY", "secret-key")
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert fake_api.calls("GET", RESULTS)[0].headers.get("Authorization") == "Bearer secret-key"
    assert [c.headers.get("Authorization") for c in fake_api.calls("GET", "/e-1.tar.gz")] == [None]


def test_job_get_s3_failures_name_the_object_and_endpoint_not_the_api(
    fake_api: FakeBacalhau, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    dead = free_port()
    s3_spec = {"Type": "s3", "Params": {"Bucket": "b", "Key": "r/e-1.tar.gz",
                                        "Endpoint": f"http://127.0.0.1:{dead}",
                                        "Region": "us-east-1"}}
    presigned = {"Type": "s3PreSigned", "Params": {
        "PreSignedURL": f"http://127.0.0.1:{dead}/b/r/e-2.tar.gz?X-Amz-Signature=sekrit",
        "SourceSpec": {"Bucket": "b", "Key": "r/e-2.tar.gz", "CID": "bafy-e2"}}}
    fake_api.on("GET", RESULTS, {"Items": [s3_spec, presigned]})
    fake_api.on("GET", EXECUTIONS, {"Items": [
        {"ID": "e-1", "NodeID": "12D3KooWOne", "PublishedResult": s3_spec},
        {"ID": "e-2", "NodeID": "12D3KooWTwo",
         "PublishedResult": {"Type": "s3", "Params": {"Bucket": "b", "Key": "r/e-2.tar.gz",
                                                      "CID": "bafy-e2"}}}]})
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"),
                     "--download-timeout-secs", "60")
    assert result.exit_code == 1
    err = result.stderr
    assert err.startswith("Error: 2 results could not be downloaded:\n"), err
    assert ("- could not download the result of execution e-1 from compute node 12D3KooWOne "
            f"(s3://b/r/e-1.tar.gz at http://127.0.0.1:{dead}): ") in err
    assert ("- could not download the result of execution e-2 from compute node 12D3KooWTwo "
            f"(presigned S3 URL http://127.0.0.1:{dead}/b/r/e-2.tar.gz): cannot connect to "
            f"127.0.0.1:{dead} (connection refused)") in err
    assert "sekrit" not in err  # the signature stays out of messages
    assert "this machine fetches s3 results itself" in err
    assert f"this machine must reach the S3 endpoint 127.0.0.1:{dead}" in err
    assert "Bacalhau API" not in err
