"""Counters and histograms that cost next to nothing to update: plain Python numbers touched
only from the node's event loop (no locks), turned into Prometheus metric families when
`/metrics` is scraped (`family()`; prometheus_client is imported only then)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""API requests and scheduling rounds: a millisecond to ten seconds."""

JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Submit to Completed: from a trivial WASM job to an hour-long one."""


class Counter:
    """A monotonically increasing count per label tuple."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def value(self, *label_values: str) -> float:
        return self.values.get(label_values, 0.0)

    def family(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for label_values, value in sorted(self.values.items()):
            family.add_metric(list(label_values), value)
        return family


class Histogram:
    """Observations counted into fixed buckets per label tuple (Prometheus histogram)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.bounds = tuple(sorted(buckets))
        # label tuple -> [count in each bucket (not cumulative) ..., count above the last, sum]
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        row = self.series.get(label_values)
        if row is None:
            row = self.series[label_values] = [0.0] * (len(self.bounds) + 2)
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def count(self, *label_values: str) -> int:
        row = self.series.get(label_values)
        return int(sum(row[:-1])) if row else 0

    def family(self) -> Any:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for label_values, row in sorted(self.series.items()):
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, hits in zip((*self.bounds, float("inf")), row[:-1], strict=True):
                cumulative += hits
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            family.add_metric(list(label_values), buckets, row[-1])
        return family
