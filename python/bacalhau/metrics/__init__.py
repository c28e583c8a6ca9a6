"""Prometheus metrics of a node, served at `/metrics` on its API port.

Flow: the job path calls cheap hooks (`NodeMetrics.plan_applied`, `job_event`,
`observe_request`) that bump plain counters and histograms (`instruments`); a scrape reads the
rest from the node's parts as they are (broker queue, node table, compute buffer and
capacity, the store files through a read-only connection: `storestats`, the libp2p counters)
and renders everything with prometheus_client (`node.NodeMetrics.scrape`). `http` holds the
route, its access check (`Metrics.Access`) and the request-timing middleware.
"""

from bacalhau.metrics.node import NodeMetrics

__all__ = ["NodeMetrics"]
