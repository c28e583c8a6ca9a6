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


def test_job_get_failed_download_is_a_clean_error(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    fake_api.on(
        "GET",
        RESULTS,
        {"Items": [{"Type": "urlDownload", "Params": {"URL": f"{fake_api.url}/gone.tar.gz"}}]},
    )
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: downloading {fake_api.url}/gone.tar.gz:")
