"""The orchestrator's view of the network: which nodes exist, whether they are approved and
connected, and what they can run (internals §9, reference §1.4 and §3.1).

`NodeManager` serves PROTOCOL_MEMBERSHIP: compute nodes send it their `NodeInfo` and their
`Heartbeat`s point to point (no gossip: the cost of a node does not grow with the network).
It registers nodes (APPROVED, or PENDING under `Orchestrator.NodeManager.ManualApproval`),
answers a heartbeat from a node it does not know with `Known: false` (the node then sends its
NodeInfo), marks nodes DISCONNECTED after `Orchestrator.NodeManager.DisconnectTimeout`
without a message and CONNECTED again when they are heard, and persists every membership and
connection change in the `NodeStore`. A heartbeat costs O(1): a dict update, a move to the
end of an ordered dict and, for a schedulable node, the native table's capacity fast path.

The heartbeat rate it sees is bounded, as Nomad bounds it: every heartbeat reply names the
interval the node should keep, `len(connected nodes) / MaxHeartbeatsPerSecond` seconds (at
most a third of the DisconnectTimeout); a node heartbeats at that interval or its own
configured one, whichever is longer. A thousand nodes at 50 per second heartbeat every 20 s.

Sender authentication: a NodeInfo or heartbeat is only accepted from the node it describes.
The sender id handed to the handlers is the one the transport authenticated (over libp2p the
peer at the other end of the Noise-authenticated connection), so a message whose `NodeID`
names another node is a forgery: it is dropped and counted in `forged`.

It keeps `table`, the native `NodeTable` the ranking runs on, holding exactly the schedulable
compute nodes (Compute, APPROVED, CONNECTED). The table is updated from the deltas as they
happen (one upsert or remove per change), never rebuilt per job.

Listeners get `(node_id, event)`: "join" when a node becomes schedulable, "leave" when it stops
being schedulable (disconnect, reject, delete), "update" for every other change worth knowing
(registration of a node that is not schedulable, new NodeInfo, membership changes that do not
change schedulability). Capacity figures from heartbeats update the table silently.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from bacalhau._native import NodeTable
from bacalhau.config import Config
from bacalhau.errors import (
    BacalhauError,
    MultipleMatchesError,
    NotFoundError,
    RankingError,
    ValidationError,
)
from bacalhau.models.codec import dumps
from bacalhau.models.node import (
    CONNECTED,
    DISCONNECTED,
    MEMBERSHIP_APPROVED,
    MEMBERSHIP_PENDING,
    MEMBERSHIP_REJECTED,
    ConnectionState,
    NodeInfo,
    NodeState,
)
from bacalhau.models.resources import Resources
from bacalhau.models.spec import matches_selector, parse_label_selectors
from bacalhau.models.timeutil import rfc3339
from bacalhau.orchestrator.nodefacts import (
    APPROVALS,
    ORDER_KEYS,
    STATUSES,
    is_schedulable_state,
    node_facts,
)
from bacalhau.orchestrator.nodeload import NodeLoad
from bacalhau.store.nodestore import NodeStore
from bacalhau.transport import messages
from bacalhau.transport.base import PROTOCOL_MEMBERSHIP, Transport

log = logging.getLogger(__name__)

EVENT_JOIN = "join"
EVENT_LEAVE = "leave"
EVENT_UPDATE = "update"

ACTION_APPROVE = "approve"
ACTION_REJECT = "reject"
ACTION_DELETE = "delete"

HEARTBEAT_TIMEOUT_ERROR = "heartbeat timeout"
COMPONENT = "NodeManager"

NodeListener = Callable[[str, str], None]


class NodeManager:
    """Node membership from gossip, heartbeats, disconnect timeout and approval."""

    def __init__(self, config: Config, store: NodeStore, transport: Transport,
                 self_info: NodeInfo) -> None:
        self.config = config
        self.store = store
        self.transport = transport
        self.self_info = self_info
        self.table: NodeTable = NodeTable()
        self.load: NodeLoad | None = None  # the requester's own count (use_load)
        self.disconnect_timeout: float = config.duration(
            "Orchestrator.NodeManager.DisconnectTimeout")
        self.manual_approval: bool = bool(config.get("Orchestrator.NodeManager.ManualApproval"))
        try:
            self.max_heartbeats_per_second = float(
                config.get("Orchestrator.NodeManager.MaxHeartbeatsPerSecond") or 0)
        except (TypeError, ValueError):
            raise ValidationError(
                "Orchestrator.NodeManager.MaxHeartbeatsPerSecond: expected a number, got "
                f"{config.get('Orchestrator.NodeManager.MaxHeartbeatsPerSecond')!r}") from None
        self._nodes: dict[str, NodeState] = {}
        self._schedulable: set[str] = set()
        # Last time each connected node (other than this one) was heard, oldest first: the
        # disconnect timer only ever looks at the head.
        self._heard: OrderedDict[str, float] = OrderedDict()
        self._listeners: list[NodeListener] = []
        # Each node's `to_dict()` as JSON, kept until the node changes (`_persist`, `_touch`):
        # listing a thousand nodes joins cached bytes instead of serializing them all.
        self._wire: dict[str, bytes] = {}
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._serving = False
        # Membership messages dropped because the NodeID they carry is not the sender the
        # transport authenticated (libp2p: the gossip signer): {"node_info": n, "heartbeat": n}.
        self.forged: dict[str, int] = {"node_info": 0, "heartbeat": 0}
        self._forgers: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the persisted nodes, register this node, serve PROTOCOL_MEMBERSHIP and start
        the disconnect timer.

        A node that was CONNECTED when this requester stopped stays CONNECTED, with a fresh
        DisconnectTimeout to be heard in (as Nomad resets every node's heartbeat timer when a
        new leader takes over): a restart must not make every node unschedulable until it
        speaks again, or work evaluated in that window (a job submitted just then) finds no
        node and fails. A node that is really gone is DISCONNECTED one timeout later, as if
        the requester had never stopped."""
        if self._timer is not None:
            return
        now = rfc3339()
        for state in self.store.list():
            if state.node_id == self.self_info.node_id:
                continue
            self._nodes[state.node_id] = state
            if state.connection_state.status == CONNECTED:
                self._touch(state.node_id)
                self._sync_table(state)
        own = NodeState(
            info=self.self_info, membership=MEMBERSHIP_APPROVED,
            connection_state=ConnectionState(status=CONNECTED, last_heartbeat=now,
                                             connected_since=now))
        self._nodes[own.node_id] = own
        self._persist(own)
        self._sync_table(own)
        if not self._serving:
            self.transport.serve(PROTOCOL_MEMBERSHIP, self.handle)
            self._serving = True
        self._timer = asyncio.create_task(self._disconnect_timer(), name="node-disconnect-timer")

    async def stop(self) -> None:
        """Stop the disconnect timer."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)

    # ------------------------------------------------------------------ queries

    def get(self, node_id: str) -> NodeState | None:
        """A copy of the node's state, or None when unknown."""
        state = self._nodes.get(node_id)
        return copy.deepcopy(state) if state is not None else None

    def resolve(self, id_or_prefix: str) -> NodeState:
        """The node with this id, or the only node whose id starts with it."""
        key = id_or_prefix.strip()
        state = self._nodes.get(key)
        if state is None and key:
            found = [s for nid, s in self._nodes.items() if nid.startswith(key)]
            if len(found) > 1:
                ids = ", ".join(sorted(s.node_id for s in found))
                raise MultipleMatchesError(
                    f"multiple nodes found for id {key}: {ids}", component=COMPONENT,
                    hint="use a longer prefix of the node id")
            state = found[0] if found else None
        if state is None:
            raise NotFoundError(f"node not found: {id_or_prefix}", component=COMPONENT)
        return copy.deepcopy(state)

    def list(self, *, filter_approval: str = "", filter_status: str = "",
             labels: Iterable[str] = (), order_by: str = "id",
             reverse: bool = False, copies: bool = True) -> list[NodeState]:
        """Node states after the filters of `GET /nodes`, ordered by `order_by` then node id.
        Filters are case-insensitive; `labels` are selectors that must all match.
        `copies=False` returns the live states, for a caller that only reads them before its
        next await (the API serializes them at once: a thousand deep copies cost more than
        the whole request may)."""
        approval = filter_approval.strip().upper()
        if approval and approval not in APPROVALS:
            raise ValidationError(
                f'invalid approval filter "{filter_approval}": use one of approved, pending, '
                "rejected")
        status = filter_status.strip().upper()
        if status and status not in STATUSES:
            raise ValidationError(
                f'invalid status filter "{filter_status}": use one of connected, disconnected')
        key_name = (order_by or "id").strip().lower()
        key = ORDER_KEYS.get(key_name)
        if key is None:
            raise ValidationError(
                f'invalid order_by "{order_by}": use one of ' + ", ".join(ORDER_KEYS))
        selector = parse_label_selectors(labels)
        out = [s for s in self._nodes.values()
               if (not approval or s.membership == approval)
               and (not status or s.connection_state.status == status)
               and (not selector or matches_selector(s.info.labels, selector))]
        out.sort(key=lambda s: s.info.node_id, reverse=reverse)
        if key_name != "id":
            out.sort(key=key, reverse=reverse)
        return [copy.deepcopy(s) for s in out] if copies else out

    def wire(self, states: Iterable[NodeState]) -> bytes:
        """A JSON array of the states' wire form (`to_dict`), from the per-node cache."""
        parts = []
        for state in states:
            data = self._wire.get(state.node_id)
            if data is None:
                data = self._wire[state.node_id] = dumps(state.to_dict())
            parts.append(data)
        return b"[" + b",".join(parts) + b"]"

    def is_schedulable(self, node_id: str) -> bool:
        """True for a Compute node that is APPROVED and CONNECTED."""
        return node_id in self._schedulable

    def add_listener(self, callback: NodeListener) -> None:
        """Call `callback(node_id, "join"|"leave"|"update")` on every membership change."""
        self._listeners.append(callback)

    # ------------------------------------------------------------------ actions

    async def approve(self, node_id: str, message: str = "") -> None:
        """Approve a PENDING or REJECTED node."""
        state = self._resolve_internal(node_id)
        if state.membership == MEMBERSHIP_APPROVED:
            raise ValidationError("node is already approved", component=COMPONENT)
        self._set_membership(state, MEMBERSHIP_APPROVED, message)

    async def reject(self, node_id: str, message: str = "") -> None:
        """Reject a node: it leaves the table and its messages are ignored from now on."""
        state = self._resolve_internal(node_id)
        if state.node_id == self.self_info.node_id:
            raise ValidationError("cannot reject the orchestrator node itself",
                                  component=COMPONENT)
        if state.membership == MEMBERSHIP_REJECTED:
            raise ValidationError("node is already rejected", component=COMPONENT)
        self._set_membership(state, MEMBERSHIP_REJECTED, message)

    async def delete(self, node_id: str, message: str = "") -> None:
        """Forget a node. If it is still alive it registers again when next heard."""
        state = self._resolve_internal(node_id)
        nid = state.node_id
        if nid == self.self_info.node_id:
            raise ValidationError("cannot delete the orchestrator node itself",
                                  component=COMPONENT)
        self.store.delete(nid)
        self._wire.pop(nid, None)
        del self._nodes[nid]
        self._heard.pop(nid, None)
        was = nid in self._schedulable
        self._drop_from_table(nid)
        log.info("node %s deleted%s", nid, f": {message}" if message else "")
        self._notify(nid, EVENT_LEAVE if was else EVENT_UPDATE)

    async def node_action(self, node_id: str, action: str, message: str = "") -> None:
        """Apply `approve`, `reject` or `delete` (case-insensitive) to a node."""
        handler = {ACTION_APPROVE: self.approve, ACTION_REJECT: self.reject,
                   ACTION_DELETE: self.delete}.get(action.strip().lower())
        if handler is None:
            raise ValidationError(
                f'unknown node action "{action}": use one of approve, reject, delete')
        await handler(node_id, message)

    # ------------------------------------------------------------------ membership messages

    async def handle(self, sender: str, payload: bytes) -> bytes:
        """Request handler of PROTOCOL_MEMBERSHIP: a `Heartbeat` or a `NodeInfo`."""
        try:
            env = messages.decode(payload)
        except BacalhauError as exc:
            return messages.reply_error(str(exc))
        if env.type == messages.HEARTBEAT:
            known = self.heartbeat(sender, env.payload)
            interval = self.heartbeat_interval()
            if interval:
                return messages.reply_ok(Known=known, HeartbeatInterval=interval)
            return messages.reply_ok(Known=known)
        if env.type == messages.NODE_INFO:
            self.node_info(sender, env.payload)
            return messages.reply_ok()
        return messages.reply_error(
            f"unknown message type {env.type!r} on {PROTOCOL_MEMBERSHIP}")

    def node_info(self, sender: str, payload: dict[str, Any]) -> None:
        """A `{"NodeInfo": {...}}` from `sender` (its authenticated id)."""
        try:
            raw = next((v for k, v in payload.items() if k.lower() == "nodeinfo"), None)
            info = NodeInfo.from_dict(raw, "NodeInfo")
        except BacalhauError as exc:
            log.warning("dropping bad NodeInfo from %s: %s", sender, exc)
            return
        if not info.node_id:
            info.node_id = sender
        elif info.node_id != sender:
            self._drop_forged("node_info", sender, info.node_id)
            return
        self._apply_node_info(info)

    def heartbeat_interval(self) -> float:
        """Seconds between two heartbeats of a node that keep this requester at or under
        `MaxHeartbeatsPerSecond` (0 = no bound, or the nodes' own interval is enough), at
        most a third of the DisconnectTimeout so that a node is never taken for lost."""
        if self.max_heartbeats_per_second <= 0:
            return 0.0
        interval = len(self._heard) / self.max_heartbeats_per_second
        return round(min(interval, self.disconnect_timeout / 3), 3)

    def heartbeat(self, sender: str, payload: dict[str, Any]) -> bool:
        """A heartbeat from `sender`; False when the node is unknown (it should send its
        NodeInfo). A hybrid node feeds its own compute's heartbeats here too; it never times
        out."""
        try:
            d = {k.lower(): v for k, v in payload.items()}
            node_id = str(d.get("nodeid") or sender)
            available = Resources.from_dict(d.get("availablecapacity"),
                                            "Heartbeat.AvailableCapacity")
            queued = Resources.from_dict(d.get("queuecapacity", d.get("queueusedcapacity")),
                                         "Heartbeat.QueueCapacity")
            running = int(d.get("runningexecutions") or 0)
            enqueued = int(d.get("enqueuedexecutions") or 0)
        except (BacalhauError, TypeError, ValueError) as exc:
            log.warning("dropping bad heartbeat from %s: %s", sender, exc)
            return True
        if node_id != sender:
            self._drop_forged("heartbeat", sender, node_id)
            return True
        state = self._nodes.get(node_id)
        if state is None:
            return False
        if state.membership == MEMBERSHIP_REJECTED:
            return True
        self._wire.pop(node_id, None)
        cni = state.info.compute_node_info
        cni.available_capacity = available
        cni.queue_used_capacity = queued
        cni.running_executions = running
        cni.enqueued_executions = enqueued
        if node_id != self.self_info.node_id and self._heard_from(state):
            return True  # reconnected: already persisted, synced and announced
        if node_id in self._schedulable and not self._update_capacity(state):
            self._notify(node_id, EVENT_LEAVE)  # its new figures cannot be ranked
        return True

    # ------------------------------------------------------------------ internals

    def _drop_forged(self, kind: str, sender: str, claimed: str) -> None:
        """A membership message whose NodeID is not its authenticated sender: dropped and
        counted (`forged`), and logged once per sender (a liar must not flood the log)."""
        self.forged[kind] = self.forged.get(kind, 0) + 1
        if sender not in self._forgers:
            self._forgers.add(sender)
            log.warning("dropping %s from %s that claims to come from %s (further messages "
                        "of this sender are dropped and only counted)", kind, sender, claimed)

    def _apply_node_info(self, info: NodeInfo) -> None:
        nid = info.node_id
        if nid == self.self_info.node_id:
            self._apply_own_info(info)
            return
        state = self._nodes.get(nid)
        if state is None:
            membership = MEMBERSHIP_PENDING if self.manual_approval else MEMBERSHIP_APPROVED
            now = rfc3339()
            state = NodeState(info=info, membership=membership, connection_state=ConnectionState(
                status=CONNECTED, last_heartbeat=now, connected_since=now))
            self._nodes[nid] = state
            self._touch(nid)
            self._persist(state)
            event = self._sync_table(state)
            log.info("node %s (%s) registered: %s", nid, info.node_type, membership)
            self._notify(nid, event)
            return
        if state.membership == MEMBERSHIP_REJECTED:
            return
        if info.to_dict() != state.info.to_dict():
            state.info = info
            if not self._heard_from(state):
                self._persist(state)
                self._notify(nid, self._sync_table(state))
        else:
            self._heard_from(state)

    def _apply_own_info(self, info: NodeInfo) -> None:
        """This node's own NodeInfo (a hybrid node feeding its compute's gossip locally)."""
        state = self._nodes.get(info.node_id)
        if state is None or info.to_dict() == state.info.to_dict():
            return
        state.info = info
        self.self_info = info
        self._persist(state)
        self._notify(info.node_id, self._sync_table(state))

    def _heard_from(self, state: NodeState) -> bool:
        """Record a message from the node; reconnects it if it was DISCONNECTED. Returns True
        when the node was reconnected (then persisted, synced and announced here)."""
        nid = state.node_id
        now = rfc3339()
        conn = state.connection_state
        conn.last_heartbeat = now
        self._touch(nid)
        if conn.status == CONNECTED:
            return False
        conn.status = CONNECTED
        conn.connected_since = now
        conn.last_error = ""
        self._persist(state)
        event = self._sync_table(state)
        log.info("node %s connected", nid)
        self._notify(nid, event)
        return True

    def _persist(self, state: NodeState) -> None:
        """Store a changed state (and forget its cached wire form)."""
        self._wire.pop(state.node_id, None)
        self.store.put(state)

    def _touch(self, node_id: str) -> None:
        self._wire.pop(node_id, None)  # LastHeartbeat (and the capacity) moved
        self._heard.pop(node_id, None)
        self._heard[node_id] = asyncio.get_running_loop().time()
        self._wake.set()

    def _disconnect(self, node_id: str) -> None:
        state = self._nodes.get(node_id)
        if state is None or state.connection_state.status != CONNECTED:
            return
        conn = state.connection_state
        conn.status = DISCONNECTED
        conn.disconnected_since = rfc3339()
        conn.last_error = HEARTBEAT_TIMEOUT_ERROR
        self._persist(state)
        was = node_id in self._schedulable
        self._drop_from_table(node_id)
        log.info("node %s disconnected: no heartbeat for %gs", node_id, self.disconnect_timeout)
        self._notify(node_id, EVENT_LEAVE if was else EVENT_UPDATE)

    async def _disconnect_timer(self) -> None:
        """One task for all nodes: `_heard` is ordered oldest first and a message only moves a
        node to the end, so the head always holds the next deadline."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._heard:
                self._wake.clear()
                await self._wake.wait()
                continue
            node_id, last = next(iter(self._heard.items()))
            delay = last + self.disconnect_timeout - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            del self._heard[node_id]
            try:
                self._disconnect(node_id)
            except Exception:
                log.exception("failed to mark node %s disconnected", node_id)

    def _resolve_internal(self, node_id: str) -> NodeState:
        return self._nodes[self.resolve(node_id).node_id]

    def _set_membership(self, state: NodeState, membership: str, message: str) -> None:
        state.membership = membership
        self._persist(state)
        event = self._sync_table(state)
        log.info("node %s %s%s", state.node_id, membership.lower(),
                 f": {message}" if message else "")
        self._notify(state.node_id, event)

    def _sync_table(self, state: NodeState) -> str:
        """Put the node in the table or take it out; returns the listener event of the change:
        "join" (became schedulable), "leave" (stopped being schedulable) or "update"."""
        nid = state.node_id
        was = nid in self._schedulable
        if is_schedulable_state(state):
            self._upsert(state)
        else:
            self._drop_from_table(nid)
        now = nid in self._schedulable
        if now and not was:
            return EVENT_JOIN
        if was and not now:
            return EVENT_LEAVE
        return EVENT_UPDATE

    def use_load(self, load: NodeLoad) -> None:
        """Rank on `load`'s view (the node's report of others' work plus this requester's
        own live executions there), refreshed whenever the own part changes."""
        self.load = load
        load.listeners.append(self._refresh_load)

    def _refresh_load(self, node_id: str, freed: bool) -> None:
        state = self._nodes.get(node_id)
        if state is not None and node_id in self._schedulable:
            self._update_capacity(state, report=False)

    def _figures(self, state: NodeState, report: bool) -> tuple[Any, Any, Any]:
        """(max, available, queued) for the table; with a load, its view (`report`: the
        node's own figures are new)."""
        cni = state.info.compute_node_info
        top = cni.max_capacity.as_tuple()
        available, queued = cni.available_capacity.as_tuple(), cni.queue_used_capacity.as_tuple()
        if self.load is None:
            return top, available, queued
        if report:
            self.load.report(state.node_id, top, available, queued)
        return (top, *self.load.view(state.node_id, top))

    def _upsert(self, state: NodeState) -> bool:
        nid = state.node_id
        try:
            facts = node_facts(state.info)
            if self.load is not None:
                _, facts["available"], facts["queued"] = self._figures(state, True)
            self.table.upsert(facts)
        except (RankingError, TypeError, ValueError) as exc:
            log.warning("node %s cannot be ranked and is left out: %s", nid, exc)
            self._drop_from_table(nid)
            return False
        self._schedulable.add(nid)
        return True

    def _update_capacity(self, state: NodeState, report: bool = True) -> bool:
        """The heartbeat fast path: only the capacity figures of a schedulable node change
        in the table. False (and out of the table) when they cannot be ranked."""
        try:
            if self.table.update_capacity(state.node_id, *self._figures(state, report)):
                return True
        except (RankingError, TypeError, ValueError) as exc:
            log.warning("node %s cannot be ranked and is left out: %s", state.node_id, exc)
            self._drop_from_table(state.node_id)
            return False
        return self._upsert(state)  # not in the table after all: put it back whole

    def _drop_from_table(self, node_id: str) -> None:
        if node_id in self._schedulable:
            self._schedulable.discard(node_id)
            self.table.remove(node_id)

    def _notify(self, node_id: str, event: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(node_id, event)
            except Exception:
                log.exception("node listener failed on %s %s", event, node_id)

