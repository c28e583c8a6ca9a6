"""Fixtures of the fault suite: a `Bed` of network-namespace hosts, skipped (naming why)
where namespaces cannot be made. Clusters on it: tests/faults/cluster.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.bed import Bed, available


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    why = available()
    if why:
        pytest.skip(f"fault bed unavailable: {why}")
    the_bed = Bed(tmp_path)
    try:
        yield the_bed
    finally:
        the_bed.close()
