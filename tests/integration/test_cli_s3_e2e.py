"""The CLI over S3 as a user runs it: `bacalhau wasm run ... -i s3://bucket/prefix/*,opt=... -p
s3://bucket2/out/{jobID},opt=... --download` in a separate process against a real `bacalhau
serve` and a real S3 protocol server (moto_server on 127.0.0.1; moto checks no credentials, so
the node and the CLI get fake AWS ones through the environment, see tests/s3server.py).

Checks the downloaded files, the objects in the output bucket, and that the published CID
equals `bacalhau cid --hidden` of the `--raw` download.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ASSETS, ServeProcess

pytestmark = [pytest.mark.integration]


@pytest.fixture
def node(s3: Any, tmp_path: Path) -> Iterator[ServeProcess]:
    """A hybrid node started after `s3` put the fake AWS credentials in the environment."""
    server = ServeProcess(data_dir=tmp_path / "node")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def bacalhau(node: ServeProcess, client_dir: Path, *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, with its own (fresh) data dir, talking to `node`."""
    env = node.env() | {"BACALHAU_DIR": str(client_dir)}
    return subprocess.run([sys.executable, "-m", "bacalhau", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def job_id_of(output: str) -> str:
    match = re.search(r"Job ID: (\S+)", output)
    assert match, output
    return match.group(1)


def test_wasm_run_from_an_s3_prefix_to_an_s3_publisher_with_download(
        s3: Any, node: ServeProcess, tmp_path: Path) -> None:
    source, dest = s3.bucket("in"), s3.bucket("out")
    s3.put(source, "data/a.txt", "alpha\n")
    s3.put(source, "data/sub/b.txt", "beta\n")
    s3.put(source, "other/c.txt", "not under the prefix\n")
    client_dir = tmp_path / "client"
    out = tmp_path / "out"

    run = bacalhau(
        node, client_dir, "wasm", "run", str(ASSETS / "copy.wasm"),
        "-i", f"s3://{source}/data/*,opt=endpoint={s3.endpoint},opt=region=us-east-1",
        "-p", f"s3://{dest}/out/{{jobID}},opt=endpoint={s3.endpoint}",
        "--download", "--output-dir", str(out), "--",
        "/inputs/a.txt", "/outputs/a.txt", "/inputs/sub/b.txt", "/outputs/b.txt",
        "/inputs/c.txt", "/outputs/c.txt")
    assert run.returncode == 0, run.stdout + run.stderr + node.logs()[-3000:]
    job_id = job_id_of(run.stdout)
    assert f"Results for job '{job_id}' have been written to..." in run.stdout

    # the merged download: the files the job copied from the prefix, and its stdout
    assert (out / "outputs" / "a.txt").read_text() == "alpha\n"
    assert (out / "outputs" / "b.txt").read_text() == "beta\n"
    assert not (out / "outputs" / "c.txt").exists()
    stdout = (out / "stdout").read_text()
    assert "copied /inputs/a.txt" in stdout and "missing /inputs/c.txt" in stdout
    assert (out / "exitCode").read_text().strip() == "0"

    # the node published into the output bucket under out/<job id>
    keys = s3.keys(dest)
    assert keys and all(k.startswith(f"out/{job_id}") for k in keys), keys
    status, body = node.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200, body
    [execution] = [e for e in body["Items"] if e.get("PublishedResult", {}).get("Type")]
    published = execution["PublishedResult"]
    assert published["Type"] == "s3" and published["Params"]["Bucket"] == dest
    cid = published["Params"]["CID"]

    # the published CID is `bacalhau cid` of the unmerged download
    raw_out = tmp_path / "raw"
    got = bacalhau(node, client_dir, "get", job_id, "--raw", "--output-dir", str(raw_out))
    assert got.returncode == 0, got.stdout + got.stderr
    [folder] = [p for p in (raw_out / "raw").iterdir() if p.is_dir()]
    printed = bacalhau(node, client_dir, "cid", "--hidden", str(folder))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == cid
    # and of the merged download: a lone result is merged byte for byte
    merged = bacalhau(node, client_dir, "cid", "--hidden", str(out))
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.strip() == cid


def test_a_bad_s3_option_is_refused_before_submitting(s3: Any, node: ServeProcess,
                                                       tmp_path: Path) -> None:
    run = bacalhau(node, tmp_path / "client", "wasm", "run", str(ASSETS / "copy.wasm"),
                   "-i", f"s3://b/data/*,opt=endpoint={s3.endpoint},opt=acl=public")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "unknown option 'acl'" in run.stderr
    status, body = node.api("GET", "/api/v1/orchestrator/jobs")
    assert status == 200 and not body.get("Items"), body
