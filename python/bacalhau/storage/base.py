"""The StorageProvider contract: how a compute node makes one input source available.

The bidder calls `check` (and `size`) before bidding; the runner calls `prepare` for every
input of an execution (in parallel) before the executor starts, and `cleanup` afterwards.
`prepare` returns a `PreparedInput` whose `host_path` the executor mounts at `target`:
a file or a directory, read-only unless `read_write`. Failures raise `errors.StorageError`
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
        """Make the input available under `work_dir` (or in place) for the executor."""
        ...

    async def cleanup(self, prepared: PreparedInput) -> None:
        """Remove what `prepare` created; never touches sources used in place."""
        ...


def describe_input(input_source: InputSource) -> str:
    """How error messages name an input: `input "alias" (target /path)`."""
    if input_source.alias and input_source.alias != input_source.target:
        return f'input "{input_source.alias}" (target {input_source.target or "unset"})'
    return f"input {input_source.target or '(no target)'}"
