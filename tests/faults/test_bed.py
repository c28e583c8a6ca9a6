"""The bed itself: namespaces, addresses and rules exist where they should and go away on
close; the machine's own network is untouched."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.faults.bed import Bed, available, sweep_stale

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _host_state() -> str:
    """What the bed could touch on the machine's own network: the loopback's qdisc, and
    links named like the bed's (other programs may add links or rules meanwhile)."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           timeout=30).stdout
    ours = [line for line in links.splitlines()
            if re.match(r"^\d+: (v\d+|br0)[@:]", line)]
    lo = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True,
                        timeout=30).stdout
    return "\n".join([*ours, lo])


def test_bed_builds_faults_and_cleans_up(tmp_path: Path) -> None:
    why = available()
    if why:
        pytest.skip(f"fault bed unavailable: {why}")
    before = _host_state()
    bed = Bed(tmp_path)
    try:
        a = bed.add_host("a", ())
        b = bed.add_host("b", (), disk_mb=4)
        assert a.ip != b.ip and a.ip.startswith("198.18.")
        assert f"inet {a.ip}/15" in a.sh("ip", "-o", "addr", "show", "dev", "eth0").stdout
        assert "state UNKNOWN" in a.sh("ip", "link", "show", "lo").stdout  # lo is up
        bed.partition(a, b, one_way=True)
        bed.loss(a, 0.05)
        bed.bandwidth(b, "1mbit")
        assert f"-s {a.ip}/32 -j DROP" in b.sh("iptables", "-S").stdout
        assert "statistic" in a.sh("iptables", "-S").stdout
        assert "tbf" in b.sh("tc", "qdisc", "show", "dev", "eth0").stdout
        b.fill_disk()
        with pytest.raises(OSError):
            (b.data_dir / "more").write_bytes(b"x" * 4096)
        assert _host_state() == before  # nothing of this on the machine's own network
        bed.heal()
        assert "DROP" not in b.sh("iptables", "-S").stdout
        assert "tbf" not in b.sh("tc", "qdisc", "show", "dev", "eth0").stdout
    finally:
        bed.close()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert bed.prefix not in namespaces
    assert not b.mounted and str(b.data_dir) not in Path("/proc/mounts").read_text()
    assert _host_state() == before


def test_namespaces_of_a_dead_run_are_swept(tmp_path: Path) -> None:
    """A run killed before its cleanup leaves `bf<pid>x...` namespaces: the next bed deletes
    those whose pid is gone, and leaves a live run's alone."""
    why = available()
    if why:
        pytest.skip(f"fault bed unavailable: {why}")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"bf{dead.pid}x1-gone"
    live = f"bf{os.getpid()}x2-live"
    for name in (stale, live):
        subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        assert stale in sweep_stale()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                timeout=30).stdout
        assert stale not in listed and live in listed
    finally:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
