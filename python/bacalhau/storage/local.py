"""The `local` input source (alias `localDirectory`): a path on the compute host, used in place.

Params: `SourcePath` (absolute), `ReadWrite` (bool or "true"), `CreateAs` (`noCreate`
default, `dir`, `file`). Nothing is copied: `host_path` is the resolved source, bind-mounted
by the executor.

Only paths allowed by the node's `Compute.AllowListedLocalPaths` can be used. Entries are
glob patterns with an optional mode suffix: `path` or `path:ro` (read-only), `path:rw`
(read-write). Matching follows doublestar (what Bacalhau uses): `*` and `?` stay inside one
path segment, `[...]` is a character class, `**` spans segments, and a trailing `/**` also
matches the directory itself (`/data/**` allows `/data` and everything below). A plain path
allows exactly that path. A read-write input needs an `:rw` entry.

The source is resolved (symlinks and `..`) before matching, and so is the literal leading
part of every pattern, so a link inside an allowed directory cannot reach outside it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bacalhau.errors import StorageError, ValidationError
from bacalhau.executors.base import PreparedInput
from bacalhau.models import InputSource, SpecConfig
from bacalhau.models.spec import get_bool_param
from bacalhau.storage.base import describe_input

CREATE_AS = {"nocreate": "noCreate", "dir": "dir", "file": "file"}
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class AllowListEntry:
    """One `Compute.AllowListedLocalPaths` entry."""

    pattern: str  # as configured, without the mode suffix
    read_write: bool
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, entry: str) -> AllowListEntry:
        text = entry.strip()
        read_write = False
        head, sep, mode = text.rpartition(":")
        if sep and mode in ("ro", "rw"):
            text, read_write = head, mode == "rw"
        if not text.startswith("/"):
            raise ValueError(f'allow-listed local path "{entry}" must be an absolute path')
        return cls(pattern=text, read_write=read_write, regex=glob_to_regex(_resolve_prefix(text)))

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None

    def __str__(self) -> str:
        return f"{self.pattern}:{'rw' if self.read_write else 'ro'}"


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a doublestar-style glob over absolute POSIX paths."""
    if len(pattern) > 1:
        pattern = pattern.rstrip("/")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("/**", i) and (i + 3 == n or pattern[i + 3] == "/"):
            out.append("(?:/.*)?")  # zero or more segments, including none
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _resolve_prefix(pattern: str) -> str:
    """Resolve the glob-free leading directories of a pattern (e.g. /tmp -> /private/tmp)."""
    match = _GLOB_CHARS.search(pattern)
    if match is None:
        return os.path.realpath(pattern)
    cut = pattern.rfind("/", 0, match.start())
    literal, rest = pattern[:cut], pattern[cut:]
    return (os.path.realpath(literal) if literal else "") + rest


def parse_allow_list(entries: Sequence[str]) -> list[AllowListEntry]:
    """Parse config entries; raises ValidationError naming the bad entry."""
    parsed = []
    for entry in entries:
        try:
            parsed.append(AllowListEntry.parse(entry))
        except (ValueError, re.error) as exc:
            raise ValidationError(
                f"Compute.AllowListedLocalPaths: {exc}",
                hint='use absolute glob patterns with an optional ":ro" or ":rw" suffix',
            ) from exc
    return parsed


class LocalStorage:
    """Serves `local`/`localDirectory` inputs from allow-listed host paths, in place."""

    types = ("local", "localDirectory")

    def __init__(self, allow_list: Sequence[str] = ()) -> None:
        self.allow_list = parse_allow_list(allow_list)

    def is_installed(self) -> bool:
        return True

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        try:
            params = self._params(source, read_write)
        except ValueError as exc:
            return [str(exc)]
        path, rw, create_as = params
        problem = self._allow_problem(path, rw)
        if problem:
            return [problem]
        if create_as == "noCreate" and not os.path.lexists(path):
            return [
                f"local source path {path} does not exist on this node; create it or set "
                'CreateAs to "dir" or "file"'
            ]
        return []

    async def size(self, source: SpecConfig) -> int | None:
        # Nothing is copied, so a directory takes no extra space; a file reports its size.
        path = source.param("SourcePath")
        if not isinstance(path, str):
            return None
        try:
            st = await asyncio.to_thread(os.stat, path)
        except OSError:
            return None
        return st.st_size if not os.path.isdir(path) else None

    async def prepare(self, input_source: InputSource, work_dir: Path) -> PreparedInput:
        what = describe_input(input_source)
        try:
            path, rw, create_as = self._params(input_source.source, False)
        except ValueError as exc:
            raise StorageError(f"{what}: {exc}") from exc
        problem = self._allow_problem(path, rw)
        if problem:
            raise StorageError(
                f"{what}: {problem}",
                hint="ask the node operator to add the path to Compute.AllowListedLocalPaths",
            )
        source = Path(path)
        if not os.path.lexists(source):
            if create_as == "noCreate":
                raise StorageError(
                    f"{what}: local source path {path} does not exist",
                    hint='create it on the node, or set Params.CreateAs to "dir" or "file"',
                )
            try:
                if create_as == "dir":
                    source.mkdir(parents=True, exist_ok=True)
                else:
                    source.parent.mkdir(parents=True, exist_ok=True)
                    source.touch(exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"{what}: could not create {path} ({create_as}): {exc.strerror}"
                ) from exc
            # re-check: a link created meanwhile must not lead outside the allow-list
            problem = self._allow_problem(path, rw)
            if problem:
                raise StorageError(f"{what}: {problem}")
        return PreparedInput(
            source=input_source,
            host_path=source.resolve(),
            target=input_source.target,
            read_write=rw,
        )

    async def cleanup(self, prepared: PreparedInput) -> None:
        return None  # used in place: nothing of ours to remove

    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _params(source: SpecConfig, read_write: bool) -> tuple[str, bool, str]:
        path = source.param("SourcePath")
        if not isinstance(path, str) or not path:
            raise ValueError("local source needs Params.SourcePath, an absolute host path")
        if not path.startswith("/"):
            raise ValueError(f'local source path "{path}" must be absolute')
        try:
            rw = read_write or get_bool_param(source, "ReadWrite")
        except ValidationError as exc:
            raise ValueError(f"local source Params.ReadWrite: {exc}") from exc
        raw_create = source.param("CreateAs") or "noCreate"
        create_as = CREATE_AS.get(str(raw_create).lower())
        if create_as is None:
            raise ValueError(
                f'local source Params.CreateAs "{raw_create}" must be one of noCreate, dir, file'
            )
        return path, rw, create_as

    def _allow_problem(self, path: str, read_write: bool) -> str:
        """Why `path` may not be used (empty when it may)."""
        resolved = os.path.realpath(path)
        matching = [e for e in self.allow_list if e.matches(resolved)]
        mode = "read-write" if read_write else "read-only"
        if not matching:
            via = f" (it resolves to {resolved})" if resolved != os.path.normpath(path) else ""
            listed = ", ".join(str(e) for e in self.allow_list) or "none"
            return (
                f"local path {path}{via} is not allow-listed on this node for {mode} use "
                f"(Compute.AllowListedLocalPaths: {listed})"
            )
        if read_write and not any(e.read_write for e in matching):
            return (
                f"local path {path} is allow-listed read-only on this node; read-write use "
                'needs an entry ending in ":rw"'
            )
        return ""
