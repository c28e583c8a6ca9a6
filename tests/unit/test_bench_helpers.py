"""Pure helpers of the overload and crash benches (bench/overload.py, bench/crash.py): how a
run is cut in thirds and how the longest stall between completions is found."""

from __future__ import annotations

from bench.crash import longest_gap
from bench.overload import thirds


def test_longest_gap_counts_the_bounds_and_ignores_events_outside() -> None:
    assert longest_gap([1.0, 2.0, 2.5], 0.0, 3.0) == 1.0
    assert longest_gap([1.0, 1.5], 0.0, 5.0) == 3.5  # the last event to the end bound
    assert longest_gap([-4.0, 9.0], 0.0, 2.0) == 2.0  # nothing inside: the whole window
    assert longest_gap([], 1.0, 1.0) == 0.0


def test_thirds_split_by_scheduled_time_and_skip_unanswered_submits() -> None:
    records = [
        {"scheduled_s": 0.0, "status": 200, "latency_s": 0.01},
        {"scheduled_s": 3.2, "status": 429, "latency_s": 0.02},
        {"scheduled_s": 3.4, "status": 0, "latency_s": 5.0},  # no answer: not a latency
        {"scheduled_s": 8.9, "status": 200, "latency_s": 0.03, "job_s": 2.0},
        {"scheduled_s": 9.0, "status": 200, "latency_s": 0.04},  # the end belongs to the last
    ]
    assert thirds(records, 9.0) == [[0.01], [0.02], [0.03, 0.04]]
    assert thirds(records, 9.0, "job_s") == [[], [], [2.0]]
