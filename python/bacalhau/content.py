"""Content addressing: the CID that Kubo's `ipfs add` prints for a file or directory, computed
locally (no IPFS node, nothing stored).

Results and inputs are named by these CIDs, so they must equal what the IPFS world computes for
the same bytes and settings (`shared/reference/unixfs.md`). The work is done by the Rust crate
`rust/unixfs` with the GIL released: leaves are hashed in parallel (sha2 with SHA-NI where the
CPU has it) and large files are read a window at a time, never whole.

Profiles (Kubo's import settings):
- `unixfs-v0-2015` (default of `ipfs add`): CIDv0 `Qm...`, 256 KiB chunks, 174 links per node,
  dag-pb leaves, directories sharded above 256 KiB by the "links" estimate;
- `cid-v1` (`ipfs add --cid-version=1`): CIDv1 `bafy...`/`bafkrei...` with raw leaves,
  otherwise as the default;
- `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links, "block" estimate.
"""

from __future__ import annotations

import os
from typing import Final

from bacalhau._native import CidError, cid_of_bytes, cid_of_path

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "RESULTS_PROFILE",
    "CidError",
    "cid",
    "cid_of_data",
    "is_small_tree",
    "results_cid",
]

PROFILES: Final[tuple[str, ...]] = ("unixfs-v0-2015", "cid-v1", "unixfs-v1-2025")
"""Profile names accepted by `cid` and `cid_of_data`."""

DEFAULT_PROFILE: Final[str] = "unixfs-v0-2015"
"""The profile of a plain `ipfs add`."""


def cid(
    path: str | os.PathLike[str],
    profile: str = DEFAULT_PROFILE,
    *,
    hidden: bool = False,
    threads: int = 0,
    dereference: bool = False,
) -> str:
    """The CID `ipfs add -r PATH` prints: the file, directory or symlink node itself.

    As Kubo does: names starting with "." inside a directory are skipped unless `hidden`;
    empty files and directories are included; symlinks become UnixFS symlink nodes unless
    `dereference`. `threads` is the number of hashing threads (0 = all cores, 1 = only the
    calling thread). Raises `CidError` for a missing path, an unknown profile (the message
    lists the valid ones), an unreadable or special file (socket, fifo, device), or a file
    that changed size while it was hashed.
    """
    if threads < 0:
        raise ValueError(f"threads must be 0 (all cores) or more, not {threads}")
    return cid_of_path(os.fspath(path), profile, hidden, threads, dereference)


def cid_of_data(data: bytes, profile: str = DEFAULT_PROFILE) -> str:
    """The CID of a file holding `data` (as `ipfs add` of that file would print)."""
    return cid_of_bytes(data, profile)


RESULTS_PROFILE: Final[str] = DEFAULT_PROFILE
"""The profile of the CID every published result carries (`PublishedResult.Params["CID"]`)."""


def results_cid(results_dir: str | os.PathLike[str], threads: int = 0) -> str:
    """The CID of an execution's results directory, as the compute attaches it to the published
    result and `job get` recomputes it after download.

    `hidden=True`: unlike a plain `ipfs add -r`, names starting with "." are hashed too, because
    the archive carries everything the job wrote; skipping them would let a changed dotfile pass
    the check. The CID is the one `ipfs add -r --hidden DIR` prints (default profile).
    Symlinks stay links (the archive keeps them as links), empty files and folders count.
    `threads` as for `cid`: 1 for a small tree (`is_small_tree`), where waking hashing threads
    costs more than hashing a few small files on the calling one.
    """
    return cid(results_dir, RESULTS_PROFILE, hidden=True, threads=threads)


# Results up to this size (and entry count) are packed and hashed on the event loop.
SMALL_RESULTS_BYTES = 256 * 1024
SMALL_RESULTS_ENTRIES = 64


def is_small_tree(root: str | os.PathLike[str]) -> bool:
    """True if `root` holds at most SMALL_RESULTS_ENTRIES entries of SMALL_RESULTS_BYTES in all
    (stops looking as soon as either is exceeded): results this small are packed and hashed on
    the event loop, where a hand-off to a thread and back would cost more than the work."""
    budget, entries = SMALL_RESULTS_BYTES, SMALL_RESULTS_ENTRIES
    pending: list[str | os.PathLike[str]] = [root]
    try:
        while pending:
            with os.scandir(pending.pop()) as it:
                for entry in it:
                    entries -= 1
                    if entries < 0:
                        return False
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        budget -= entry.stat(follow_symlinks=False).st_size
                        if budget < 0:
                            return False
    except OSError:
        return False
    return True
