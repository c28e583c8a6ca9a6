"""The history part of the orchestrator's job store (`bacalhau.store.jobstore.JobStore`, split
out by concern): the events of a job and its executions, numbered per job by `SeqNum` in the
order they were written. The last SeqNum of recently written jobs is kept in memory
(`_history_seq`, dropped on any rollback) so that an append needs no MAX() query.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from bacalhau.errors import ValidationError
from bacalhau.models import EXECUTION_LEVEL, JOB_LEVEL, Event, JobHistory
from bacalhau.models.codec import dumps, loads
from bacalhau.models.timeutil import now_ns, rfc3339
from bacalhau.store.sqlite import Database

HISTORY_SEQ_CACHE_SIZE = 4096


def prefix_upper(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix` (for range scans)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class JobHistoryLog:
    """The history methods of `JobStore` (which provides `_db`)."""

    _db: Database

    def _init_history(self) -> None:
        self._history_seq: dict[str, int] = {}  # job id -> last SeqNum written
        self._db.add_rollback_listener(self._history_seq.clear)

    def add_history(
        self, job_id: str, job_version: int, event: Event, execution_id: str = ""
    ) -> JobHistory:
        """Append an event to a job's history (execution-level when `execution_id` is set)."""
        now = now_ns()
        if not event.timestamp:
            event.timestamp = rfc3339(now)
        seq_num = self._history_seq.get(job_id)
        while True:
            if seq_num is None:
                row = self._db.query_one(
                    "SELECT COALESCE(MAX(seq_num), 0) FROM history WHERE job_id = ?", (job_id,))
                seq_num = int(row[0]) if row else 0
            item = JobHistory(
                seq_num=seq_num + 1,
                type=EXECUTION_LEVEL if execution_id else JOB_LEVEL,
                job_id=job_id, job_version=job_version, execution_id=execution_id,
                event=event, time=rfc3339(now))
            try:
                self._db.execute(
                    "INSERT INTO history (job_id, seq_num, type, job_version, execution_id, "
                    "time_ns, data) VALUES (?,?,?,?,?,?,?)",
                    (job_id, item.seq_num, item.type, job_version, execution_id, now,
                     dumps(item.to_dict())))
            except sqlite3.IntegrityError:
                if job_id not in self._history_seq:
                    raise
                # another connection wrote history of this job: ask the file again
                self._history_seq.pop(job_id, None)
                seq_num = None
                continue
            break
        if len(self._history_seq) >= HISTORY_SEQ_CACHE_SIZE and job_id not in self._history_seq:
            self._history_seq.clear()
        self._history_seq[job_id] = item.seq_num
        return item

    def job_history(
        self,
        job_id: str,
        *,
        since: int = 0,
        event_type: str = "all",
        execution_id: str = "",
        job_version: int | None = None,
        offset: int = 0,
        limit: int = 0,
    ) -> list[JobHistory]:
        """History in SeqNum order. `since` is Unix seconds; `execution_id` a prefix;
        `job_version` None = every version; limit 0 = no limit."""
        sql = "SELECT data FROM history WHERE job_id = ?"
        params: list[Any] = [job_id]
        kind = (event_type or "all").lower()
        if kind == "job":
            sql += " AND type = ?"
            params.append(JOB_LEVEL)
        elif kind == "execution":
            sql += " AND type = ?"
            params.append(EXECUTION_LEVEL)
        elif kind != "all":
            raise ValidationError(
                f'invalid event_type "{event_type}": use all, job or execution')
        if execution_id:
            sql += " AND execution_id >= ? AND execution_id < ?"
            params.extend((execution_id, prefix_upper(execution_id)))
        if since:
            sql += " AND time_ns >= ?"
            params.append(since * 1_000_000_000)
        if job_version:
            sql += " AND job_version = ?"
            params.append(job_version)
        sql += " ORDER BY seq_num"
        if limit > 0:
            sql += " LIMIT ? OFFSET ?"
            params.extend((limit, max(offset, 0)))
        elif offset > 0:
            sql += " LIMIT -1 OFFSET ?"
            params.append(offset)
        return [JobHistory.from_dict(loads(r["data"])) for r in self._db.query(sql, params)]
