"""The compute role: bid on executions, queue them by priority until capacity frees, run them
(inputs -> executor -> results -> publisher) and report to the requester. See README.md."""

from bacalhau.compute.service import NODE_INFO_REQUEST, ComputeNode

__all__ = ["NODE_INFO_REQUEST", "ComputeNode"]
