"""The `noop` publisher: results stay on the node; nothing is listed in `/results`."""

from __future__ import annotations

from pathlib import Path

from bacalhau.models import Execution, SpecConfig


class NoopPublisher:
    type = "noop"

    def is_installed(self) -> bool:
        return True

    def check(self, spec: SpecConfig) -> list[str]:
        return []

    async def publish(self, execution: Execution, results_dir: Path) -> SpecConfig:
        return SpecConfig()
