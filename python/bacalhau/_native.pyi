"""Typing of the native module `bacalhau._native` (Rust: rust/native, rust/ranking, rust/merge).

Private: import the exceptions from `bacalhau.errors`. Contracts: docs/internals.md §2.
"""

from collections.abc import Sequence
from os import PathLike
from typing import Any, Final, final, overload

__all__ = [
    "__version__",
    "MergeError",
    "NodeTable",
    "Ranking",
    "RankingError",
    "merge_results",
    "not_enough_nodes_message",
    "pack_dir",
    "unpack",
]

__version__: Final[str]

_Resources = tuple[float, float, float, float]
"""(cpu cores, memory bytes, disk bytes, gpus); a list of 4 numbers is accepted too."""

_Version = tuple[int, int, int]
"""(major, minor, patch)."""

_NodeFacts = dict[str, Any]
"""One compute node (internals §2). Keys: `node_id: str` (required), `engines`, `publishers`,
`storages: list[str]`, `labels: dict[str, str]`, `max_job`, `max_capacity`, `available`,
`queued: _Resources`, `version: _Version | None`. Missing keys default to empty/zero/None;
unknown keys raise ValueError; a wrong type raises TypeError naming the key."""

_JobRequirements = dict[str, Any]
"""What one task needs (internals §2). Keys, all optional: `engine: str`, `publisher: str`
("" = any), `storages: list[str]`, `constraints: list[tuple[str, str, list[str]]]`
((key, operator, values); operator one of `in notin exists ! = == != gt lt`; a `favour_` key
prefix makes the constraint soft), `resources: _Resources`, `previous: dict[str, tuple[int,
bool, bool]]` (node id -> (executions of this job version, one is live, bid rejected)),
`min_version: _Version` (default (1, 0, 4)), `oversubscription_factor: float` (default 1.5).
Unknown keys raise ValueError; a wrong type raises TypeError naming the key."""

_NodeRank = tuple[str, int, bool, str, bool]
"""(node_id, rank, suitable, reason, retryable); rank is -1 and reason non-empty when unsuitable."""

_ReasonCount = tuple[str, int, str, bool]
"""(reason, nodes rejected with it, smallest such node id, retryable)."""

_StrPath = str | PathLike[str]

class RankingError(Exception):
    """A ranking request or node update was malformed (bad constraint, bad resources)."""

class MergeError(Exception):
    """Packing, unpacking or merging results failed (unsafe entry, conflict, I/O)."""

@final
class NodeTable:
    """The requester's compute nodes, ranked per job (reference §5.3)."""

    def __init__(self) -> None: ...
    def upsert(self, node: _NodeFacts) -> None:
        """Insert or replace a node. TypeError/ValueError name the bad key; RankingError for
        an empty id or negative/NaN resources."""
    def remove(self, node_id: str) -> None:
        """Remove a node; unknown ids are ignored."""
    def update_capacity(
        self, node_id: str, max_capacity: _Resources, available: _Resources, queued: _Resources
    ) -> bool:
        """Replace only a known node's capacity figures (heartbeats); False if unknown."""
    def class_count(self) -> int:
        """Distinct node classes: nodes with identical static facts (engines, publishers,
        storages, labels, max job, version) share one, and static checks run once per class."""
    def __len__(self) -> int: ...
    @overload
    def rank(self, job: _JobRequirements, seed: int) -> list[_NodeRank]:
        """Every node: suitable first, then rank descending, then node id. Deterministic for a
        given table content, job and seed (negative seeds wrap to 64 bits). RankingError for a
        malformed constraint or resources. Runs without the GIL."""
    @overload
    def rank(self, job: _JobRequirements, seed: int, limit: int | None) -> Ranking:
        """The best `limit` suitable nodes (None = all suitable), without sorting the rest,
        and the rejected nodes counted per reason (nothing per rejected node). Same order and
        determinism as the two-argument form."""

@final
class Ranking:
    """The answer of `NodeTable.rank(job, seed, limit)`."""

    @property
    def top(self) -> list[_NodeRank]:
        """The best suitable nodes, best first (at most `limit`)."""
    @property
    def available(self) -> int:
        """Nodes considered."""
    @property
    def suitable(self) -> int:
        """Suitable nodes, also those beyond `limit`."""
    @property
    def retryable(self) -> bool:
        """Some node was rejected for a capacity-like reason."""
    @property
    def reasons(self) -> list[_ReasonCount]:
        """Rejections grouped by message: count descending, then message."""
    def message(self, requested: int) -> str:
        """"not enough nodes to run job. requested: R, available: A, suitable: S." plus one
        bullet per reason, as `not_enough_nodes_message` writes it."""

def not_enough_nodes_message(requested: int, ranks: Sequence[_NodeRank]) -> str:
    """"not enough nodes to run job. requested: R, available: A, suitable: S." plus one
    "\\n• N of A nodes: <reason>" / "\\n• Node <short id>: <reason>" line per distinct reason."""

def pack_dir(src_dir: _StrPath, dest_tar_gz: _StrPath) -> int:
    """Pack a directory into a deterministic .tar.gz; return its size in bytes. Refuses links
    leaving `src_dir` and special files (MergeError). Runs without the GIL."""

def unpack(tar_gz: _StrPath, dest_dir: _StrPath) -> None:
    """Unpack a .tar.gz; MergeError naming the entry for `..`, absolute names, escaping links,
    devices and fifos. Runs without the GIL."""

def merge_results(archives: Sequence[_StrPath], out_dir: _StrPath, raw: bool = False) -> list[str]:
    """Merge result archives into `out_dir`; return the relative file paths written, sorted.
    stdout/stderr/exitCode are appended in archive order; any other path found twice (or
    already in `out_dir`) raises MergeError before anything is written. `raw` puts each
    archive in `out_dir/raw/<archive stem>/`. Runs without the GIL."""

# --- Content addressing (rust/unixfs) ----------------------------------------------------------

__all__ += ["CidError", "cid_of_bytes", "cid_of_path"]

class CidError(Exception):
    """Computing a CID failed (missing path, unknown profile, unreadable or unsupported file)."""

def cid_of_path(
    path: _StrPath,
    profile: str = "unixfs-v0-2015",
    hidden: bool = False,
    threads: int = 0,
    dereference: bool = False,
) -> str:
    """The CID Kubo's `ipfs add -r` prints for a file, directory or symlink. `profile` is one of
    "unixfs-v0-2015", "cid-v1", "unixfs-v1-2025" (CidError listing them otherwise); dot files
    are skipped unless `hidden`; symlinks are UnixFS symlink nodes unless `dereference`;
    `threads` 0 = all cores, 1 = the calling thread only (negative: OverflowError). CidError
    for a missing path, an unreadable or special file, or a file that changed size while
    hashed. Runs without the GIL."""

def cid_of_bytes(data: bytes, profile: str = "unixfs-v0-2015") -> str:
    """The CID of a file holding `data`, hashed on all cores. Runs without the GIL."""

# --- libp2p transport (rust/transport) ---------------------------------------------------------

from typing import Literal

__all__ += [
    "NativeNode",
    "NativeTransportError",
    "generate_swarm_key",
    "load_peer_id",
    "parse_swarm_key",
]

class NativeTransportError(Exception):
    """The libp2p transport failed (bad config or swarm key, closed node, message too large)."""

_NodeConfig = dict[str, Any]
"""Keys, all optional: `listen: list[str]` and `peers: list[str]` (multiaddrs; each peer ends
in `/p2p/<peer id>`), `swarm_key: bytes | None` (32 bytes, see `parse_swarm_key`),
`allow_list: list[str] | None` (peer ids), `max_message_size: int` (default 4 MiB),
`gossip_heartbeat_ms`, `announce_interval_ms`, `idle_timeout_ms`, `ping_interval_ms`,
`handshake_timeout_ms`, `max_request_timeout_ms: int`, `event_queue: int`, `agent_version: str`.
Unknown keys raise ValueError; wrong types TypeError naming the key."""

_Event = (
    tuple[Literal["gossip"], str, str, bytes]
    | tuple[Literal["request"], int, str, str, bytes]
    | tuple[Literal["response"], int, Literal[True], bytes]
    | tuple[Literal["response"], int, Literal[False], str]
    | tuple[Literal["connected"], str]
    | tuple[Literal["disconnected"], str]
    | tuple[Literal["listen_addr"], str]
)
"""("gossip", topic, author peer id (signature verified), data) · ("request", inbound id, peer,
protocol, data) · ("response", request id, True, reply) | ("response", request id, False,
error message) · ("connected" | "disconnected", peer id) · ("listen_addr", multiaddr)."""

@final
class NativeNode:
    """A libp2p node on its own thread and tokio runtime (rust/transport). Only usable in the
    process that created it (NativeTransportError after fork)."""

    def __init__(self, config: _NodeConfig, key_file: _StrPath) -> None:
        """Load (or create, mode 0600) the ed25519 identity in `key_file`, start the swarm and
        return once every listen address is bound. Runs without the GIL."""
    @property
    def peer_id(self) -> str: ...
    def listen_addrs(self) -> list[str]:
        """Bound listen addresses (ports resolved), without `/p2p/`."""
    def connected_peers(self) -> list[str]:
        """Peer ids with an open connection, sorted."""
    def subscribe(self, topic: str) -> None: ...
    def unsubscribe(self, topic: str) -> None: ...
    def publish(self, topic: str, data: bytes) -> None:
        """Gossip signed `data`; having no peers yet is not an error. Never blocks."""
    def dial(self, addr: str) -> None: ...
    def request(self, peer: str, protocol: str, data: bytes, timeout_s: float) -> int:
        """Send a request on `/bacalhau/rpc/1`; returns its id. The outcome arrives as a
        "response" event within `timeout_s` (capped to `max_request_timeout_ms`). Never blocks;
        ValueError for a non-positive timeout, NativeTransportError for a bad peer id."""
    def respond(self, inbound_id: int, data: bytes) -> None:
        """Answer an inbound request; unknown or expired ids are ignored."""
    def respond_error(self, inbound_id: int, message: str) -> None: ...
    def next_events(self, max: int, timeout_ms: int) -> list[_Event]:
        """Wait up to `timeout_ms` for an event, then return up to `max` queued events ([] on
        timeout, or at once when closed). Runs without the GIL."""
    def stats(self) -> dict[str, int]:
        """messages_in, bytes_in, messages_out, bytes_out, dropped_by_allow_list,
        denied_connections, rejected_by_validation, failed_incoming, failed_dials,
        publish_errors, events_dropped. Runs without the GIL."""
    def close(self) -> None:
        """Close every connection and stop the thread; idempotent. Runs without the GIL."""

def next_events(max: int, timeout_ms: int) -> list[tuple[Any, ...]]:
    """Wait up to `timeout_ms` for an event of any node of this process, then return up to
    `max` queued events, each `(node key, kind, ...)`. Runs without the GIL."""

def wake_fd() -> int | None:
    """The descriptor an event loop watches: readable once an event arrives after
    `clear_wake()`; None where it could not be made."""

def clear_wake() -> None:
    """Empty the wake-up descriptor and arm it again; drain with `next_events(max, 0)` after."""

def load_peer_id(key_file: _StrPath) -> str:
    """The peer id of the identity in `key_file`, created (mode 0600) if absent."""

def generate_swarm_key() -> str:
    """A fresh random key in Kubo's swarm.key format."""

def parse_swarm_key(text: str) -> bytes:
    """The 32-byte key of a Kubo swarm.key text; NativeTransportError names the bad line."""
