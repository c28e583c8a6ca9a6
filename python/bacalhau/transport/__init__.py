"""The transport seam between nodes (see base.py) and its implementations."""

from bacalhau.transport.base import (
    PROTOCOL_COMPUTE,
    PROTOCOL_MEMBERSHIP,
    PROTOCOL_ORCHESTRATOR,
    TOPIC_NODE_INFO,
    GossipHandler,
    RequesterWatcher,
    RequestHandler,
    Transport,
)
from bacalhau.transport.inprocess import InProcessNetwork, InProcessTransport

__all__ = [
    "PROTOCOL_COMPUTE", "PROTOCOL_MEMBERSHIP", "PROTOCOL_ORCHESTRATOR", "TOPIC_NODE_INFO",
    "GossipHandler", "InProcessNetwork", "InProcessTransport", "RequestHandler",
    "RequesterWatcher", "Transport",
]
