"""The standard libp2p interop proof: an independent implementation, py-libp2p (the `libp2p`
package from PyPI, 0.8.1, on trio, in a separate venv made by scripts/p2p_interop_venv.sh),
dials a `bacalhau serve --compute` node on an open network (no swarm key) and receives the
node's NodeInfo over gossipsub.

What this shows: our wire is standard libp2p — TCP, multistream-select, Noise XX with libp2p's
signed static-key payload, yamux, gossipsub /meshsub/1.1.0 with signed messages (py-libp2p
checks the signature under strict signing and reports the signer = the node's peer id).
Why open: py-libp2p's PSK (pnet) layer differs from go/rust-libp2p's, so private clusters are
only tested between our own nodes (tests/integration/test_network.py).

The NodeInfo arrives without waiting for the info interval because a compute node gossips it
again when a peer subscribes to its topic (compute/membership.py; requesters get it directly).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServeProcess

pytestmark = [pytest.mark.integration]

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_SCRIPT = REPO_ROOT / "scripts" / "p2p_interop_venv.sh"
CLIENT = REPO_ROOT / "scripts" / "p2p_interop_client.py"


@pytest.fixture(scope="module")
def py_libp2p() -> str:
    """Python of the py-libp2p venv; skips, naming why, if it cannot be built (no PyPI)."""
    try:
        proc = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True,
                              timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"py-libp2p venv could not be created: {exc!r}")
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        pytest.skip(f"py-libp2p venv could not be created (rc={proc.returncode}): {tail}")
    return proc.stdout.strip().splitlines()[-1]


def test_py_libp2p_receives_node_info_over_gossipsub(py_libp2p: str, tmp_path: Path) -> None:
    node = ServeProcess(data_dir=tmp_path / "compute", roles=("--compute",),
                        extra_args=["--listen", "/ip4/127.0.0.1/tcp/0"])
    node.start()
    try:
        node_id = node.node_id
        [address] = node.addresses()
        proc = subprocess.run([py_libp2p, str(CLIENT), address, "30"], capture_output=True,
                              text=True, timeout=90)
        lines = proc.stdout.strip().splitlines()
        assert lines, proc.stderr[-3000:]
        report = json.loads(lines[-1])
        assert proc.returncode == 0 and report["ok"], (report, proc.stderr[-3000:])
    finally:
        node.stop()
    assert report["connected"] is True
    assert report["protocol"] == "/meshsub/1.1.0"
    assert report["signed"] is True
    assert report["signer"] == node_id  # the signature-verified author is the node
    assert report["node_id"] == node_id and report["node_type"] == "Compute"
    assert report["self"] != node_id and report["self"].startswith("12D3KooW")
