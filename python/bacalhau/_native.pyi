"""Typing of the native module `bacalhau._native` (Rust: rust/native, rust/ranking, rust/merge).

Private: import the exceptions from `bacalhau.errors`. Contracts: docs/internals.md §2.
"""

from collections.abc import Sequence
from os import PathLike
from typing import Any, Final, final

__all__ = [
    "__version__",
    "MergeError",
    "NodeTable",
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
    def __len__(self) -> int: ...
    def rank(self, job: _JobRequirements, seed: int) -> list[_NodeRank]:
        """Every node: suitable first, then rank descending, then node id. Deterministic for a
        given table content, job and seed (negative seeds wrap to 64 bits). RankingError for a
        malformed constraint or resources. Runs without the GIL."""

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
