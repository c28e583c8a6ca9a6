"""The Publisher contract: where an execution's `results/` directory goes after it ran.

The runner calls `publish(execution, results_dir)` once the executor finished; the returned
SpecConfig is stored as `Execution.PublishedResult` and tells clients how to download the
results (reference §4.3). An empty SpecConfig means "nothing to download". Failures raise
`errors.PublisherError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from bacalhau.models import Execution, SpecConfig


@runtime_checkable
class Publisher(Protocol):
    """One publisher type (`local`, `s3`, `ipfs`, `noop`, ...)."""

    type: str

    def is_installed(self) -> bool:
        """True when this node can publish with this type."""
        ...

    def check(self, spec: SpecConfig) -> list[str]:
        """Bid-time problems with the task's publisher spec; empty means ok."""
        ...

    async def publish(self, execution: Execution, results_dir: Path) -> SpecConfig:
        """Publish `results_dir`; returns the result's SpecConfig."""
        ...
