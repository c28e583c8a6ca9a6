"""CIDs on published results: what the compute attaches, what `job get` verifies before it
merges anything, and what `job describe` shows (issue 4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bacalhau import _native
from bacalhau.cli import results
from bacalhau.content import cid, results_cid
from tests.unit.test_cli_get import RESULTS, run_cli, tar_gz
from tests.unit.test_cli_job import full_job_answer
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, Reply, fake_api

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

EXECUTIONS = f"/api/v1/orchestrator/jobs/{JOB_ID}/executions"


def results_tree(root: Path) -> Path:
    """A results dir as the runner leaves it, with the cases the CID must not lose: a hidden
    file, an empty file, an empty result folder and a link inside the dir."""
    (root / "outputs" / "sub").mkdir(parents=True)
    (root / "empty-result").mkdir()
    (root / "stdout").write_text("hello\n")
    (root / "stderr").write_bytes(b"")
    (root / "exitCode").write_text("0")
    (root / "outputs" / ".hidden").write_text("dot\n")
    (root / "outputs" / "sub" / "big.bin").write_bytes(os.urandom(300_000))
    os.symlink("sub/big.bin", root / "outputs" / "link")
    return root


def test_results_cid_counts_hidden_files(tmp_path: Path) -> None:
    root = results_tree(tmp_path / "r")
    assert results_cid(root) == cid(root, "unixfs-v0-2015", hidden=True)
    assert results_cid(root) != cid(root, "unixfs-v0-2015", hidden=False)
    assert results_cid(root).startswith("Qm")


def test_packed_results_keep_their_cid(tmp_path: Path) -> None:
    """pack_dir -> unpack is CID-preserving: what the node hashes is what `job get` rehashes."""
    root = results_tree(tmp_path / "r")
    archive = tmp_path / "e-1.tar.gz"
    _native.pack_dir(str(root), str(archive))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    want = results_cid(root)
    assert results.verify_download(archive, want, "e-1", scratch) == want
    assert list(scratch.iterdir()) == [], "the scratch folder is removed"


def test_verify_download_names_execution_and_both_cids(tmp_path: Path) -> None:
    root = results_tree(tmp_path / "r")
    archive = tmp_path / "e-1.tar.gz"
    _native.pack_dir(str(root), str(archive))
    want = results_cid(root)
    (root / "outputs" / ".hidden").write_text("changed\n")
    other = tmp_path / "e-2.tar.gz"
    _native.pack_dir(str(root), str(other))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(results.ResultMismatch) as info:
        results.verify_download(other, want, "e-1234", scratch)
    got = results_cid(root)
    err = info.value
    assert (err.execution_id, err.expected, err.actual) == ("e-1234", want, got)
    assert "e-1234" in str(info.value) and want in str(info.value) and got in str(info.value)
    assert list(scratch.iterdir()) == []


def test_result_cid_reads_params_case_insensitively() -> None:
    assert results.result_cid({"Params": {"cid": "Qm1"}}) == "Qm1"
    assert results.result_cid({"Params": {"URL": "http://x"}}) == ""
    assert results.result_cid({}) == ""


def serve(server: FakeBacalhau, tmp_path: Path, *, tamper: bool) -> tuple[str, str]:
    """Two results with CIDs; with `tamper`, the second archive's bytes differ from its CID.
    Returns the second result's published and actual CIDs."""
    cids, bodies = [], []
    for i in (1, 2):
        root = tmp_path / f"src{i}"
        (root / "outputs").mkdir(parents=True)
        (root / "stdout").write_text(f"out {i}\n")
        (root / "outputs" / f"{i}.txt").write_text(str(i))
        cids.append(results_cid(root))
        if tamper and i == 2:
            (root / "outputs" / f"{i}.txt").write_text("forged")
        archive = tmp_path / f"e-{i}.tar.gz"
        _native.pack_dir(str(root), str(archive))
        bodies.append(archive.read_bytes())
        server.on("GET", f"/e-{i}.tar.gz", Reply(body=bodies[-1]))
    items = [{"Type": "urlDownload",
              "Params": {"URL": f"{server.url}/e-{i}.tar.gz", "CID": cids[i - 1]}}
             for i in (1, 2)]
    server.on("GET", RESULTS, {"Items": items, "NextToken": ""})
    server.on("GET", EXECUTIONS, {"Items": [
        {"ID": f"e-000000{i}-aaaa", "PublishedResult": items[i - 1]} for i in (1, 2)
    ], "NextToken": ""})
    actual = results_cid(tmp_path / "src2")
    return cids[1], actual


def test_job_get_verifies_then_merges(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    serve(fake_api, tmp_path, tamper=False)
    out = tmp_path / "out"
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "stdout").read_text() == "out 1\nout 2\n"
    assert sorted(p.name for p in (out / "outputs").iterdir()) == ["1.txt", "2.txt"]
    assert not (out / "raw").exists()


@pytest.mark.parametrize("raw", [False, True])
def test_job_get_refuses_a_mismatch_and_writes_nothing(
    fake_api: FakeBacalhau, tmp_path: Path, raw: bool
) -> None:
    published, actual = serve(fake_api, tmp_path, tamper=True)
    out = tmp_path / "out"
    args = ["job", "get", JOB_ID, "--output-dir", str(out)] + (["--raw"] if raw else [])
    result = run_cli(fake_api, *args)
    assert result.exit_code == 1
    assert "execution e-0000002-aaaa" in result.stderr
    assert published in result.stderr and actual in result.stderr
    assert not out.exists(), "nothing is written into the output dir"


def test_job_get_refusal_leaves_an_existing_output_dir_as_it_was(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    serve(fake_api, tmp_path, tamper=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(out))
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_job_get_without_cids_merges_unverified(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    fake_api.on("GET", "/e-1.tar.gz", Reply(body=tar_gz({"stdout": b"x\n"})))
    fake_api.on("GET", RESULTS, {"Items": [
        {"Type": "urlDownload", "Params": {"URL": f"{fake_api.url}/e-1.tar.gz"}}]})
    out = tmp_path / "out"
    result = run_cli(fake_api, "job", "get", JOB_ID, "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "stdout").read_text() == "x\n"


def test_job_describe_shows_the_cid_per_execution(fake_api: FakeBacalhau) -> None:
    answer = full_job_answer()
    [execution] = answer["Executions"]["Items"]
    execution["PublishedResult"] = {
        "Type": "urlDownload",
        "Params": {"URL": "http://127.0.0.1:6001/e.tar.gz", "CID": "QmTestCid"},
    }
    fake_api.on("GET", f"/api/v1/orchestrator/jobs/{JOB_ID}", answer)
    result = run_cli(fake_api, "job", "describe", JOB_ID)
    assert result.exit_code == 0, result.output
    section = result.output.split("Published Results", 1)[1]
    row = next(line for line in section.splitlines() if "QmTestCid" in line)
    assert "e-9f8e7d6c" in row and "http://127.0.0.1:6001/e.tar.gz" in row
