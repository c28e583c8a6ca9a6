"""The fault scenarios at CI sizes (tests/faults/scenarios.py): each asserts 0 lost jobs,
0 duplicate completions, verified result CIDs, and prints its recovery time.
`python -m bench faults` runs the same scenarios at full size and tabulates them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import scenarios
from tests.faults.bed import Bed, faketime_lib

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def check(report: dict) -> None:
    print(f"\n{report['fault']}: {report}")
    assert report["accepted"] > 0, report
    assert report["lost"] == 0, report
    assert report["duplicates"] == 0, report
    assert report["bad_cids"] == [], report
    assert report["long_running_short"] == [], report


def test_partition_requester_compute(bed: Bed, tmp_path: Path) -> None:
    report = scenarios.partition(bed, scenarios.Sizes.quick(), tmp_path)
    check(report)
    assert report["api_failures"] == 0, report  # the requester answers during the partition


def test_one_way_partition(bed: Bed, tmp_path: Path) -> None:
    report = scenarios.partition(bed, scenarios.Sizes.quick(), tmp_path, one_way=True)
    check(report)
    assert report["api_failures"] == 0, report


def test_loss_on_every_link(bed: Bed, tmp_path: Path) -> None:
    check(scenarios.loss(bed, scenarios.Sizes.quick(), tmp_path))


def test_frozen_compute(bed: Bed, tmp_path: Path) -> None:
    report = scenarios.freeze(bed, scenarios.Sizes.quick(), tmp_path)
    check(report)
    assert report["api_failures"] == 0, report


@pytest.mark.parametrize("point", scenarios.CRASH_POINTS)
def test_kill_9_at_failpoint(bed: Bed, tmp_path: Path, point: str) -> None:
    report = scenarios.crash_at(bed, scenarios.Sizes.quick(), tmp_path, point)
    check(report)
    assert report["ids_lost"] == [], report


def test_full_disk_on_a_compute(bed: Bed, tmp_path: Path) -> None:
    report = scenarios.full_disk(bed, scenarios.Sizes.quick(), tmp_path)
    check(report)
    assert report["victim_up"], report


def test_compute_clock_ahead(bed: Bed, tmp_path: Path) -> None:
    if not faketime_lib():
        pytest.skip("libfaketime is not installed (scripts/install_fault_tools.sh)")
    check(scenarios.clock_ahead(bed, scenarios.Sizes.quick(), tmp_path))
