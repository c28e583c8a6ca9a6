"""How a job's inputs and result paths map onto the WASI file system of a wasm run.

- a directory input is preopened at its target, read-only unless `read_write`;
- file inputs are grouped by the parent of their target; each group gets a per-execution
  staging directory (hard links, or copies across file systems) preopened at that parent.
  The staging dir is writable only if one of its files is `read_write`; read-only files in a
  writable group are copied, so the guest cannot change the source through a link. A group
  of one file whose own directory lies in the execution dir and holds nothing else (an input
  provider wrote it there, as the inline one does) needs no staging: that directory is
  preopened instead, which shows the guest the same thing;
- each ResultPath's `results_dir/<Name>` is preopened read-write at its `Path`;
- an input handed over in memory (`PreparedInput.data`: an inline module) is not mounted at
  all: the guest does not see it in its file system.
`resolve_target` finds the host file behind a guest path (module files given as files).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from bacalhau.errors import ExecutorError
from bacalhau.executors.base import PreparedInput, RunRequest


def preopens(request: RunRequest, staging: Path) -> list[tuple[Path, str, bool]]:
    """(host dir, guest path, writable) for every preopen of this execution."""
    mounts: dict[str, tuple[Path, bool]] = {}

    def add(guest: str, host: Path, writable: bool, what: str) -> None:
        if guest in mounts:
            raise ExecutorError(
                f"{what} is mounted at {guest}, which is already used by another input "
                "or result path",
                hint="give every input source and result path its own path",
            )
        mounts[guest] = (host, writable)

    file_groups: dict[str, list[PreparedInput]] = {}
    for prepared in request.inputs:
        if prepared.data is not None:
            continue  # read from memory by the executor, nothing on disk to mount
        guest = _normalize_guest(prepared.target)
        try:
            mode = os.stat(prepared.host_path).st_mode
        except OSError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            add(guest, prepared.host_path, prepared.read_write, f"input {guest}")
        elif mode is not None:
            parent = guest.rsplit("/", 1)[0] or "/"
            file_groups.setdefault(parent, []).append(prepared)
        else:
            raise ExecutorError(
                f"input {guest}: prepared path {prepared.host_path} does not exist"
            )
    for result in request.result_paths:
        host = request.results_dir / result.name
        os.makedirs(host, exist_ok=True)  # the runner made it; kept for other callers
        add(_normalize_guest(result.path), host, True, f"result path {result.name}")
    for index, (parent, group) in enumerate(sorted(file_groups.items())):
        writable = any(p.read_write for p in group)
        own_dir = _sole_file_dir(group, request.work_root)
        if own_dir is not None:
            # a directory of this execution holds the file alone, under its guest name:
            # mounting it shows the guest exactly what a staging dir would
            add(parent, own_dir, writable, f"input files under {parent}")
            continue
        stage = staging / f"{index}"
        stage.mkdir(parents=True, exist_ok=True)
        for prepared in group:
            dest = stage / PurePosixPath(_normalize_guest(prepared.target)).name
            _stage_file(prepared.host_path, dest, link=prepared.read_write or not writable)
        add(parent, stage, writable, f"input files under {parent}")
    return [(host, guest, writable) for guest, (host, writable) in mounts.items()]


def _sole_file_dir(group: list[PreparedInput], execution_dir: Path) -> Path | None:
    """The host directory of a one-file group if it lies in the execution's own directory
    (an input provider made it for this run) and holds nothing but that regular file, named
    as in the guest; else None."""
    if len(group) != 1:
        return None
    prepared = group[0]
    name = _normalize_guest(prepared.target).rsplit("/", 1)[1]
    folder = os.path.dirname(prepared.host_path)
    inside = folder == str(execution_dir) or folder.startswith(f"{execution_dir}/")
    if os.path.basename(prepared.host_path) != name or not inside:
        return None
    try:
        with os.scandir(folder) as entries:
            found = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    except OSError:
        return None
    return prepared.host_path.parent if found == [(name, True)] else None


@functools.lru_cache(maxsize=1024)
def absolute_guest(path: str) -> str:
    """`path` made absolute and normalised as PurePosixPath does (".." kept). Cached: the
    same few guest paths come back with every run, and pathlib is slow to parse them."""
    return str(PurePosixPath("/", path))


def _normalize_guest(path: str) -> str:
    normalized = absolute_guest(path)
    if "/../" in f"{normalized}/":
        raise ExecutorError(f'path "{path}" must not contain ".."')
    return normalized


def _stage_file(source: Path, dest: Path, *, link: bool) -> None:
    if link:
        try:
            os.link(source, dest)
            return
        except OSError:
            pass  # other file system or no permission: copy instead
    shutil.copy2(source, dest)


def resolve_target(inputs: list[PreparedInput], target: str) -> Path | None:
    """The host path behind a guest path: the input with the longest target prefix wins.

    None when no input covers `target`, or when the path leaves the input's directory
    (`..` or a symlink pointing outside it).
    """
    wanted = PurePosixPath("/", target)
    best: tuple[int, PreparedInput, PurePosixPath] | None = None
    for prepared in inputs:
        if prepared.data is not None:
            continue  # no host path behind it
        mount = PurePosixPath("/", prepared.target)
        if wanted == mount:
            rel = PurePosixPath()
        elif mount in wanted.parents:
            rel = wanted.relative_to(mount)
        else:
            continue
        if best is None or len(mount.parts) > best[0]:
            best = (len(mount.parts), prepared, rel)
    if best is None:
        return None
    _, prepared, rel = best
    if not rel.parts:
        return prepared.host_path
    if ".." in rel.parts:
        return None
    host = prepared.host_path.joinpath(*rel.parts)
    try:
        if not host.resolve().is_relative_to(prepared.host_path.resolve()):
            return None
    except OSError:
        return None
    return host
