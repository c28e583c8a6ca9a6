"""A cluster on a fault bed: a requester host and compute hosts, with short timeouts
(heartbeats every 0.5 s, DISCONNECTED after 3 s of silence, queued jobs tried every second) so
that fault scenarios are fast."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.faults.bed import Bed, Host

HEARTBEAT = 0.5
DISCONNECT_TIMEOUT = 3.0
QUEUE_BACKOFF = 1.0  # a queued job tries again this often (default 60 s)


@dataclass
class Cluster:
    """A requester host and compute hosts on one bed."""

    bed: Bed
    requester: Host
    computes: list[Host] = field(default_factory=list)

    def add_compute(self, *, disk_mb: int = 0, clock_offset: str = "",
                    env: dict[str, str] | None = None, start: bool = True) -> Host:
        name = f"c{len(self.computes)}"
        host = self.bed.add_host(
            name, ("--compute",), disk_mb=disk_mb, clock_offset=clock_offset, env=env,
            extra_args=["--peers", self.requester.multiaddr,
                        "-c", f"Compute.Heartbeat.Interval={HEARTBEAT}s"])
        self.computes.append(host)
        if start:
            host.start()
        return host


def start_cluster(bed: Bed, computes: int, *, requester_env: dict[str, str] | None = None,
                  disconnect_timeout: float = DISCONNECT_TIMEOUT) -> Cluster:
    requester = bed.add_host(
        "req", ("--orchestrator",), env=requester_env,
        extra_args=["-c", f"Orchestrator.NodeManager.DisconnectTimeout={disconnect_timeout}s",
                    "-c", f"Orchestrator.Scheduler.QueueBackoff={QUEUE_BACKOFF}s"])
    requester.start()
    cluster = Cluster(bed, requester)
    for _ in range(computes):
        cluster.add_compute()
    return cluster


def wait_connected(cluster: Cluster, hosts: list[Host], timeout: float = 30.0) -> None:
    ids = {h.node_id for h in hosts}

    def connected() -> bool:
        status, doc = cluster.bed.api(cluster.requester, "GET", "/api/v1/orchestrator/nodes")
        up = {n["Info"]["NodeID"] for n in doc["Nodes"]
              if n.get("ConnectionState", {}).get("Status") == "CONNECTED"}
        return status == 200 and ids <= up

    cluster.bed.wait(connected, timeout, f"{sorted(ids)} CONNECTED")
