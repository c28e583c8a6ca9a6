"""Counts read from a node's SQLite files at scrape time, on a read-only connection of its
own (WAL readers never block the node's writer), so that nothing on the job path counts
anything: jobs by type and state, executions by state."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bacalhau.models import ExecutionStateType

JOBS_BY_TYPE_AND_STATE = "SELECT type, state, COUNT(*) FROM jobs GROUP BY type, state"
ORCHESTRATOR_EXECUTIONS = "SELECT compute_state, COUNT(*) FROM executions GROUP BY compute_state"
COMPUTE_EXECUTIONS = "SELECT state, COUNT(*) FROM executions GROUP BY state"


def execution_state_name(value: int) -> str:
    """`BidAccepted` for 5: Bacalhau's spelling of an execution state."""
    try:
        name = ExecutionStateType(int(value)).name
    except ValueError:
        return str(value)
    return "".join(part.capitalize() for part in name.split("_"))


class StoreReader:
    """One read-only connection to a store file, opened on first use, used from one scrape
    at a time (the caller serialises scrapes) on a worker thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of `sql`; [] while the file does not exist or cannot be read."""
        try:
            if self._conn is None:
                if not self.path.exists():
                    return []
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                             timeout=2.0, check_same_thread=False)
            return list(self._conn.execute(sql).fetchall())
        except sqlite3.Error:
            self.close()
            return []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
