"""Membership over libp2p at N nodes on one machine (not a timed test).

Layout: R requesters (orchestrator-only nodes) in one worker process and C compute nodes in
worker processes of K nodes each (default 2 + 30 nodes: 1 + 3 processes; one OS process per
node would be too heavy on 2 cores). Every node is a full `bacalhau.node.Node` with its own
libp2p host (own key, own port on 127.0.0.1), exactly as `bacalhau serve` builds it; compute
nodes join by dialing the requesters' addresses and gossip discovery completes the mesh.

Figures, printed beside the configured heartbeat interval and disconnect timeout:
- join: from a compute node's start (`Node.start()` called) until every requester lists it
  CONNECTED (per node p50/p95/max), and from launching the compute processes until every
  requester sees every node;
- steady state: messages and payload bytes per node per second, in and out, from the
  transport's `stats()` over a window (application payloads: gossip delivered/published,
  requests/responses; gossipsub's own control traffic and forwarding are not counted by the
  transport), plus CPU per node from /proc;
- loss: `kill -9` of one compute process (K nodes at once) until every requester marks each
  of its nodes DISCONNECTED (per node min/p50/max; expected between timeout - heartbeat and
  timeout, plus the timer's resolution).

Diagnostics: before the kill every worker writes `<base>/<role>-<index>.json` (heartbeat
arrival times per requester and node, heartbeat publish times per compute node, event-loop
stalls over 0.2 s, transport stats, peers), so a gap can be told apart: published but not
delivered (network), not published (the compute's loop stalled), or delivered late in a burst.
The base directory (and each worker's log) is kept.

Run: `.venv/bin/python -m bench.network_membership [--computes 30] [--requesters 2]
[--per-process 10] [--heartbeat 1s] [--disconnect-timeout 5s] [--window 10]`;
writes bench/results/network_membership.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
LISTEN = "/ip4/127.0.0.1/tcp/0"


# ------------------------------------------------------------------------------ worker side


async def worker(args: argparse.Namespace) -> None:
    """Runs `args.count` nodes of one role; answers commands read from stdin, one JSON line
    each on stdout: `stats`, `seen` (requesters), `quit`."""
    from bacalhau.config import Config
    from bacalhau.node import Node
    from bacalhau.transport.base import TOPIC_HEARTBEAT

    base = Path(args.base)
    peers = [p for p in args.peers.split(",") if p]
    requester = args.worker == "requester"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    nodes: list[Node] = []
    started_at: dict[str, float] = {}
    events: dict[str, list[tuple[float, str, str]]] = {}  # requester -> (t, node, status)
    arrivals: dict[str, dict[str, list[float]]] = {}  # requester -> node -> heartbeat times
    published: dict[str, list[float]] = {}  # compute node -> times it published a heartbeat
    lags: list[tuple[float, float]] = []  # (time, how late a 0.1 s sleep woke) over 0.2 s

    async def watch_loop() -> None:
        """Event-loop stalls of this worker process (every node in it shares the loop)."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.1)  # the probe itself: how late does a 0.1 s sleep wake?
            late = time.monotonic() - t - 0.1
            if late > 0.2:
                lags.append((time.time(), late))

    watcher = asyncio.create_task(watch_loop())
    for i in range(args.count):
        cfg = Config({
            "DataDir": str(base / f"{args.worker}-{args.index}-{i}"),
            "API": {"Host": "127.0.0.1", "Port": 0},
            "Orchestrator": {"Enabled": requester,
                             "NodeManager": {"DisconnectTimeout": args.disconnect_timeout}},
            "Compute": {"Enabled": not requester,
                        "Heartbeat": {"Interval": args.heartbeat}},
            "Publishers": {"Types": {"Local": {"Port": 0}}},
            "Network": {"Transport": "libp2p", "Listen": [LISTEN], "Peers": peers},
        })
        node = Node(cfg)
        t0 = time.time()
        await node.start()
        started_at[node.node_id] = t0
        nodes.append(node)
        if requester:
            mine: list[tuple[float, str, str]] = []
            events[node.node_id] = mine
            manager = node.requester.nodes

            def on_event(nid: str, event: str, log: list[tuple[float, str, str]] = mine,
                         m: Any = manager) -> None:
                state = m.get(nid)
                if state is not None and event in ("join", "leave"):
                    log.append((time.time(), nid, state.connection_state.status))

            manager.add_listener(on_event)
            beats: dict[str, list[float]] = {}
            arrivals[node.node_id] = beats

            async def on_beat(sender: str, _payload: bytes,
                              b: dict[str, list[float]] = beats) -> None:
                b.setdefault(sender, []).append(time.time())

            node.p2p.subscribe(TOPIC_HEARTBEAT, on_beat)
        else:
            sent = published.setdefault(node.node_id, [])

            async def on_publish(_sender: str, _payload: bytes, s: list[float] = sent) -> None:
                s.append(time.time())

            node.compute.add_local_listener(TOPIC_HEARTBEAT, on_publish)

    def reply(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    reply({"event": "ready", "pid": os.getpid(), "nodes": [
        {"id": n.node_id, "addrs": n.addresses(), "started_at": started_at[n.node_id]}
        for n in nodes]})

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    while True:
        command = await commands.get()
        if command == "stats":
            stats = {n.node_id: await asyncio.to_thread(n.p2p.stats) for n in nodes}
            reply({"event": "stats", "t": time.time(), "cpu_s": _cpu_seconds(os.getpid()),
                   "stats": stats})
        elif command == "seen":
            reply({"event": "seen", "events": events})
        elif command == "gaps":
            # per requester and node: the longest silence between two heartbeats, and when;
            # the silence since the last one counts too (a node that fell silent for good)
            now = time.time()
            gaps = {r: {nid: max(((b - a, a) for a, b in itertools.pairwise([*ts, now])),
                                 default=(0.0, 0.0)) for nid, ts in per.items()}
                    for r, per in arrivals.items()}
            (base / "arrivals.json").write_text(json.dumps({"arrivals": arrivals,
                                                            "events": events}))
            reply({"event": "gaps", "gaps": gaps})
        elif command == "dump":
            # everything this worker recorded, for offline analysis of gaps
            path = base / f"{args.worker}-{args.index}.json"
            stats = {n.node_id: await asyncio.to_thread(n.p2p.stats) for n in nodes}
            path.write_text(json.dumps({
                "arrivals": arrivals, "events": events, "published": published,
                "lags": lags, "stats": stats, "peers": {n.node_id: n.p2p.peers() for n in nodes},
                "t": time.time()}))
            reply({"event": "dump", "path": str(path)})
        elif command == "peers":
            reply({"event": "peers", "peers": {n.node_id: n.p2p.peers() for n in nodes}})
        elif command == "quit":
            break
    watcher.cancel()
    for node in reversed(nodes):
        await node.stop()
    reply({"event": "bye"})


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ parent side


class Worker:
    def __init__(self, role: str, index: int, count: int, base: Path, peers: list[str],
                 args: argparse.Namespace) -> None:
        self.role = role
        self.log = open(base / f"{role}-{index}.log", "wb")  # noqa: SIM115 - child's stderr
        cmd = [sys.executable, "-m", "bench.network_membership", "--worker", role,
               "--index", str(index), "--count", str(count), "--base", str(base),
               "--peers", ",".join(peers), "--heartbeat", args.heartbeat,
               "--disconnect-timeout", args.disconnect_timeout]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env)
        self.ready: dict[str, Any] = {}

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(
                f"{self.role} worker exited ({self.proc.poll()}); see {self.log.name}")
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def wait_ready(self) -> dict[str, Any]:
        self.ready = self.read()
        return self.ready

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
                self.proc.wait(30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _pcts(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {"n": len(ordered), "min_s": ordered[0], "p50_s": pct(0.5), "p95_s": pct(0.95),
            "max_s": ordered[-1], "mean_s": statistics.fmean(ordered)}


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)  # poll interval of a deadline-bounded wait


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bacalhau.config import parse_duration

    heartbeat = parse_duration(args.heartbeat)
    disconnect = parse_duration(args.disconnect_timeout)
    base = Path(tempfile.mkdtemp(prefix="bench-membership-"))
    print(f"logs and per-worker dumps: {base}", flush=True)
    workers: list[Worker] = []
    try:
        req = Worker("requester", 0, args.requesters, base, [], args)
        workers.append(req)
        req.wait_ready()
        requester_ids = [n["id"] for n in req.ready["nodes"]]
        requester_addrs = [a for n in req.ready["nodes"] for a in n["addrs"]]

        launched = time.time()
        per = max(1, args.per_process)
        groups = [min(per, args.computes - i) for i in range(0, args.computes, per)]
        computes = [Worker("compute", i, count, base, requester_addrs, args)
                    for i, count in enumerate(groups)]
        workers.extend(computes)
        for w in computes:
            w.wait_ready()
        compute_nodes = {n["id"]: n for w in computes for n in w.ready["nodes"]}
        print(f"{len(requester_ids)} requesters + {len(compute_nodes)} compute nodes in "
              f"{len(workers)} processes; waiting for every requester to see every node",
              flush=True)

        def first_times(doc: dict[str, Any], status: str, after: float = 0.0,
                        ) -> dict[str, dict[str, float]]:
            """requester -> node -> first time (>= after) the node entered `status`."""
            out: dict[str, dict[str, float]] = {}
            for r, items in doc["events"].items():
                mine = out.setdefault(r, {})
                for t, nid, st in items:
                    if st == status and t >= after:
                        mine.setdefault(nid, t)
            return out

        def all_seen() -> dict[str, dict[str, float]] | None:
            seen = first_times(req.ask("seen"), "CONNECTED")
            ok = all(set(compute_nodes) <= set(seen.get(r, {})) for r in requester_ids)
            return seen if ok else None

        seen = _wait(all_seen, 120, "every requester to see every node")
        join = [max(seen[r][nid] for r in requester_ids) - n["started_at"]
                for nid, n in compute_nodes.items()]
        last_seen = max(seen[r][nid] for r in requester_ids for nid in compute_nodes)
        all_seen_after_launch = last_seen - launched
        all_seen_after_last_start = last_seen - max(n["started_at"] for n in
                                                    compute_nodes.values())

        # steady state
        time.sleep(args.warmup)  # let the join traffic settle before the window
        first = {id(w): w.ask("stats") for w in workers}
        time.sleep(args.window)  # the measurement window itself
        second = {id(w): w.ask("stats") for w in workers}
        rates: dict[str, list[dict[str, float]]] = {"requester": [], "compute": []}
        cpu: dict[str, list[float]] = {"requester": [], "compute": []}
        for w in workers:
            a, b = first[id(w)], second[id(w)]
            dt = b["t"] - a["t"]
            for nid, s2 in b["stats"].items():
                s1 = a["stats"][nid]
                rates[w.role].append({k: (s2[k] - s1[k]) / dt for k in (
                    "messages_in", "messages_out", "bytes_in", "bytes_out")})
            cpu[w.role].append((b["cpu_s"] - a["cpu_s"]) / dt / len(b["stats"]))

        def mean_rates(items: list[dict[str, float]]) -> dict[str, float]:
            return {k: statistics.fmean(r[k] for r in items) for k in items[0]} if items else {}

        # connections: every compute node should hold one to every requester (gossip to the
        # requesters' topics travels over direct connections: compute nodes do not subscribe)
        peers = {nid: set(p) for w in workers for nid, p in w.ask("peers")["peers"].items()}
        cut_off = sorted(nid for nid in compute_nodes if not set(requester_ids) <= peers[nid])
        peer_counts = [len(p) for p in peers.values()]

        for w in workers:
            w.ask("dump")

        # kill -9 one compute process
        victim = computes[-1]
        victim_ids = [n["id"] for n in victim.ready["nodes"]]
        killed = time.time()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()

        def all_left() -> dict[str, dict[str, float]] | None:
            left = first_times(req.ask("seen"), "DISCONNECTED", after=killed)
            ok = all(set(victim_ids) <= set(left.get(r, {})) for r in requester_ids)
            return left if ok else None

        left = _wait(all_left, disconnect * 3 + 30, "the killed nodes to be DISCONNECTED")
        detect = [left[r][nid] - killed for r in requester_ids for nid in victim_ids]
        gaps = req.ask("gaps")["gaps"]
        worst = [(g, t - launched) for per in gaps.values() for nid, (g, t) in per.items()
                 if nid not in victim_ids]
        # nodes marked DISCONNECTED while alive (before the kill): false positives
        before = req.ask("seen")
        false_disconnects = sum(1 for items in before["events"].values()
                                for t, _nid, st in items if st == "DISCONNECTED" and t < killed)
        errors = {w.role + str(i): sum(s["events_dropped"] + s["publish_errors"]
                                       for s in second[id(w)]["stats"].values())
                  for i, w in enumerate(workers)}
    finally:
        for w in workers:
            w.close()

    return {
        "benchmark": "network_membership",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": {"requesters": args.requesters, "computes": args.computes,
                   "nodes_per_compute_process": args.per_process,
                   "processes": 1 + len(groups), "heartbeat_interval_s": heartbeat,
                   "disconnect_timeout_s": disconnect, "window_s": args.window,
                   "transport": "libp2p tcp+noise+yamux on 127.0.0.1, gossipsub defaults "
                                "(heartbeat 1s), flood publish"},
        "join": {"per_node_start_to_seen_by_all": _pcts(join),
                 "launch_to_all_seen_s": all_seen_after_launch,
                 "last_start_to_all_seen_s": all_seen_after_last_start},
        "steady_state_per_node_per_s": {
            "requester": mean_rates(rates["requester"]),
            "compute": mean_rates(rates["compute"]),
            "cpu_fraction": {k: statistics.fmean(v) for k, v in cpu.items() if v},
            "note": "application payloads counted by the transport (gossip delivered and "
                    "published, requests/responses); gossipsub control traffic, forwarding "
                    "and framing are not included",
        },
        "connections": {"peers_per_node": {"min": min(peer_counts), "max": max(peer_counts),
                                           "full_mesh": len(peer_counts) - 1},
                        "compute_nodes_without_a_requester_connection": len(cut_off),
                        "cut_off_nodes": cut_off},
        "loss": {"killed_nodes": len(victim_ids),
                 "kill_to_disconnected": _pcts(detect),
                 "false_disconnects_before_kill": false_disconnects,
                 "longest_heartbeat_gap_s": max(worst)[0] if worst else None,
                 "longest_gap_began_after_launch_s": max(worst)[1] if worst else None,
                 "heartbeat_gaps_over_2x_interval": sum(1 for g, _ in worst
                                                        if g > 2 * heartbeat),
                 "expected_window_s": [max(0.0, disconnect - heartbeat), disconnect]},
        "transport_errors": errors,
    }


def report(result: dict[str, Any]) -> None:
    c = result["config"]
    j = result["join"]
    s = result["steady_state_per_node_per_s"]
    loss = result["loss"]["kill_to_disconnected"]
    per = j["per_node_start_to_seen_by_all"]
    print(f"\nnodes: {c['requesters']} requesters + {c['computes']} compute in "
          f"{c['processes']} processes ({c['nodes_per_compute_process']} compute nodes per "
          f"process); {result['machine']['cpus']} CPUs")
    print(f"configured: heartbeat interval {c['heartbeat_interval_s']:g}s, "
          f"disconnect timeout {c['disconnect_timeout_s']:g}s")
    print(f"join: node start -> seen by every requester p50 {per['p50_s']:.2f}s "
          f"p95 {per['p95_s']:.2f}s max {per['max_s']:.2f}s; launch of the compute processes "
          f"-> every requester sees every node {j['launch_to_all_seen_s']:.2f}s "
          f"(last node start -> all seen {j['last_start_to_all_seen_s']:.2f}s)")
    for role in ("compute", "requester"):
        r = s[role]
        if r:
            print(f"steady {role:9s}: in {r['messages_in']:.1f} msg/s {r['bytes_in'] / 1e3:.1f} "
                  f"kB/s, out {r['messages_out']:.1f} msg/s {r['bytes_out'] / 1e3:.2f} kB/s "
                  f"per node; CPU {s['cpu_fraction'].get(role, math.nan) * 100:.1f}% per node")
    print(f"loss: kill -9 of {result['loss']['killed_nodes']} nodes -> DISCONNECTED at every "
          f"requester after min {loss['min_s']:.2f}s p50 {loss['p50_s']:.2f}s max "
          f"{loss['max_s']:.2f}s (expected {result['loss']['expected_window_s'][0]:g}.."
          f"{result['loss']['expected_window_s'][1]:g}s + timer resolution); live nodes "
          f"wrongly marked DISCONNECTED before the kill: "
          f"{result['loss']['false_disconnects_before_kill']}; longest heartbeat gap of a "
          f"live node {result['loss']['longest_heartbeat_gap_s']:.2f}s (began "
          f"{result['loss']['longest_gap_began_after_launch_s']:.1f}s after launch)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, default=30)
    parser.add_argument("--requesters", type=int, default=2)
    parser.add_argument("--per-process", type=int, default=10)
    parser.add_argument("--heartbeat", default="1s")
    parser.add_argument("--disconnect-timeout", default="5s")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "network_membership.json")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["requester", "compute"], help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--base", default="", help=argparse.SUPPRESS)
    parser.add_argument("--peers", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args))
        return 0
    result = run(args)
    report(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
