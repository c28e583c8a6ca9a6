"""The StorageProvider contract: how a compute node makes one input source available.

The bidder calls `check` (and `size`) before bidding; the runner calls `prepare` for every
input of an execution (in parallel) before the executor starts, and `cleanup` afterwards.
`prepare` returns a `PreparedInput` whose `host_path` the executor mounts at `target`:
a file or a directory, read-only unless `read_write`. The runner names a `work_dir` for every
input but does not make it: a provider that writes files makes it (an input used in place
costs no folder), and the runner removes it after the run. A provider may also offer
`read_bytes(input_source) -> bytes | None`: a one-file input's content without writing it,
for inputs an executor reads as bytes (see `executors/base.py`).
Failures raise `errors.StorageError`
whose message names the input (alias or target) and says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from bacalhau.executors.base import PreparedInput
from bacalhau.models import InputSource, SpecConfig


@runtime_checkable
class StorageProvider(Protocol):
    """One family of input source types, e.g. `("local", "localDirectory")`."""

    types: tuple[str, ...]

    def is_installed(self) -> bool:
        """True when this node can fetch sources of these types."""
        ...

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        """Bid-time problems with `source`; empty means it can be prepared."""
        ...

    async def size(self, source: SpecConfig) -> int | None:
        """Bytes the input will take on this node, or None when unknown."""
        ...

    async def prepare(self, input_source: InputSource, work_dir: Path) -> PreparedInput:
        """Make the input available under `work_dir` (made here if needed) or in place."""
        ...

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Remove what `prepare` created; never touches sources used in place."""
        ...


def describe_input(input_source: InputSource) -> str:
    """How error messages name an input: `input "alias" (target /path)`."""
    if input_source.alias and input_source.alias != input_source.target:
        return f'input "{input_source.alias}" (target {input_source.target or "unset"})'
    return f"input {input_source.target or '(no target)'}"
