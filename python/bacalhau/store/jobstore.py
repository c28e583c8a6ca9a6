"""The orchestrator's job store: `<DataDir>/orchestrator/jobs.db` (SQLite, WAL).

Tables: `jobs` (current spec and state of each job) and `job_versions` (every version's spec),
`executions`, `evaluations`, `history` (events numbered per job by `SeqNum`) and `outbox`
(messages to compute nodes, written in the same transaction as the state they announce and
sent by the dispatcher after commit). Objects are stored as their wire JSON plus the columns
queries filter and sort on.

Updates of jobs and executions are conditional on the revision the caller read (optimistic
concurrency); a mismatch raises `RevisionConflictError`. Group calls with `transaction()`.

Caches (the store is the only writer of its file, but neither cache depends on that):
- parsed jobs, by job id with the exact stored bytes they came from: a read still fetches the
  row, and parses only when the bytes differ; callers get their own copy;
- the last history SeqNum of recently written jobs, dropped on any rollback.

Parts of this class split out by concern: the outbox (`add_outbox`, `pending_outbox`, the sent
marks) in `bacalhau.store.joboutbox`, the evaluations in `bacalhau.store.jobevaluations` and
the history in `bacalhau.store.jobhistory`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bacalhau.errors import ConflictError, MultipleMatchesError, NotFoundError, ValidationError
from bacalhau.models import (
    Execution,
    ExecutionDesiredStateType,
    ExecutionStateType,
    Job,
    JobState,
    JobStateType,
)
from bacalhau.models.codec import dumps, loads
from bacalhau.models.ids import is_full_id
from bacalhau.models.job import RESERVED_META_PREFIX
from bacalhau.models.spec import LabelSelectorRequirement, matches_selector
from bacalhau.models.timeutil import now_ns
from bacalhau.store.jobevaluations import JobEvaluations
from bacalhau.store.jobhistory import JobHistoryLog, prefix_upper
from bacalhau.store.joboutbox import JobOutbox
from bacalhau.store.sqlite import Database

SCHEMA_V1 = """
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    type        TEXT NOT NULL,
    state       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    modify_time INTEGER NOT NULL,
    labels      TEXT NOT NULL,
    data        BLOB NOT NULL
);
CREATE UNIQUE INDEX jobs_by_name ON jobs (namespace, name);
CREATE INDEX jobs_by_create ON jobs (create_time);
CREATE INDEX jobs_by_modify ON jobs (modify_time);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE TABLE job_versions (
    job_id      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (job_id, version)
) WITHOUT ROWID;
CREATE TABLE executions (
    id            TEXT PRIMARY KEY,
    job_id        TEXT NOT NULL,
    node_id       TEXT NOT NULL,
    job_version   INTEGER NOT NULL,
    desired_state INTEGER NOT NULL,
    compute_state INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,
    modify_time   INTEGER NOT NULL,
    data          BLOB NOT NULL
);
CREATE INDEX executions_by_job ON executions (job_id, create_time);
CREATE INDEX executions_by_node ON executions (node_id, desired_state);
CREATE TABLE evaluations (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    status      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    data        BLOB NOT NULL
);
CREATE INDEX evaluations_by_status ON evaluations (status, create_time);
CREATE TABLE history (
    job_id       TEXT NOT NULL,
    seq_num      INTEGER NOT NULL,
    type         TEXT NOT NULL,
    job_version  INTEGER NOT NULL,
    execution_id TEXT NOT NULL,
    time_ns      INTEGER NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (job_id, seq_num)
) WITHOUT ROWID;
CREATE TABLE outbox (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    peer     TEXT NOT NULL,
    protocol TEXT NOT NULL,
    payload  BLOB NOT NULL,
    created  INTEGER NOT NULL,
    sent     INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unsent ON outbox (peer, id) WHERE sent = 0;
"""

# Version 2: `job_versions` and `history` become rowid tables with a unique index on their key.
# As WITHOUT ROWID tables keyed by a random job id, every write put a whole row (a 4 KB job,
# an event) into a leaf somewhere in the middle of the tree: SQLite advises those only for rows
# under ~1/20 of a page. Now the rows go to the end of the table and only the small key is
# placed in the middle (issue 15: 136 -> 77 us and 10 -> 7.7 WAL pages for a job's version
# and seven events).
SCHEMA_V2 = """
CREATE TABLE job_versions_v2 (
    job_id      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    data        BLOB NOT NULL
);
INSERT INTO job_versions_v2 (job_id, version, data)
    SELECT job_id, version, data FROM job_versions ORDER BY job_id, version;
DROP TABLE job_versions;
ALTER TABLE job_versions_v2 RENAME TO job_versions;
CREATE UNIQUE INDEX job_versions_by_job ON job_versions (job_id, version);
CREATE TABLE history_v2 (
    job_id       TEXT NOT NULL,
    seq_num      INTEGER NOT NULL,
    type         TEXT NOT NULL,
    job_version  INTEGER NOT NULL,
    execution_id TEXT NOT NULL,
    time_ns      INTEGER NOT NULL,
    data         BLOB NOT NULL
);
INSERT INTO history_v2 (job_id, seq_num, type, job_version, execution_id, time_ns, data)
    SELECT job_id, seq_num, type, job_version, execution_id, time_ns, data FROM history
    ORDER BY job_id, seq_num;
DROP TABLE history;
ALTER TABLE history_v2 RENAME TO history;
CREATE UNIQUE INDEX history_by_job ON history (job_id, seq_num);
"""

MIGRATIONS = [SCHEMA_V1, SCHEMA_V2]

ORDER_COLUMNS = {"": "create_time", "created_at": "create_time", "modified_at": "modify_time"}
IN_PROGRESS_STATES = (JobStateType.PENDING, JobStateType.QUEUED, JobStateType.RUNNING)


class RevisionConflictError(ConflictError):
    """A conditional update found a newer revision than the one the caller read."""


def spec_fingerprint(job: Job) -> bytes:
    """The parts of a job a user changes; equal fingerprints mean "no changes detected"."""
    d = job.to_dict()
    for key in ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime"):
        d.pop(key, None)
    d["Meta"] = {k: v for k, v in d["Meta"].items() if not k.startswith(RESERVED_META_PREFIX)}
    return dumps(d)


JOB_CACHE_SIZE = 512


class JobStore(JobOutbox, JobEvaluations, JobHistoryLog):
    """Jobs, their versions, executions, evaluations, history and the outbox of a requester."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._db = Database(path)
        self._db.migrate(MIGRATIONS, name="jobstore")
        self._jobs: dict[str, tuple[bytes | str, Job]] = {}  # id -> (stored JSON, parsed)
        self._init_history()
        self._closed = False
        # `(execution id, node id, job id, live)` once the transaction block that wrote an
        # execution succeeded (the requester's own count of node load, orchestrator/nodeload.py)
        self.execution_listeners: list[Callable[[str, str, str, bool], None]] = []
        self._init_outbox()

    @property
    def db(self) -> Database:
        """The connection, for stores that share this file (e.g. the NodeStore)."""
        return self._db

    async def durable(self) -> None:
        """Return once everything written so far is committed (see `Database.durable`)."""
        await self._db.durable()

    def close(self) -> None:
        if not self._closed:
            self.flush_sent()
            self._closed = True
        self._db.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """Group calls into one `BEGIN IMMEDIATE … COMMIT` (nestable)."""
        return self._db.transaction()

    # ----- jobs -------------------------------------------------------------------------------

    def create_or_update_job(self, job: Job, *, force: bool = False) -> tuple[Job, Job | None]:
        """Store a submitted job; a job with the same name in its namespace gets a new version.

        Returns (stored job, previous job or None). An update with an identical spec and no
        `force` raises ConflictError. The caller sets ID, meta and defaults beforehand.
        """
        now = now_ns()
        with self.transaction():
            row = self._db.query_one(
                "SELECT id, data FROM jobs WHERE namespace = ? AND name = ?",
                (job.namespace, job.name))
            previous = self._job(row[0], row[1]) if row else None
            stored = job.copy()
            stored.state = JobState(JobStateType.PENDING.value)
            stored.modify_time = now
            if previous is None:
                stored.version, stored.revision, stored.create_time = 1, 1, now
                data = dumps(stored.to_dict())
                try:
                    self._db.execute(
                        "INSERT INTO jobs (id, name, namespace, type, state, version, revision, "
                        "create_time, modify_time, labels, data) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (stored.id, stored.name, stored.namespace, stored.type,
                         stored.state.state_type, stored.version, stored.revision,
                         stored.create_time, stored.modify_time, dumps(stored.labels).decode(),
                         data))
                except sqlite3.IntegrityError as exc:
                    raise ConflictError(f"job {stored.id} already exists") from exc
                self._cache_job(stored, data)
            else:
                if not force and spec_fingerprint(previous) == spec_fingerprint(job):
                    raise ConflictError(
                        f"no changes detected for job {job.name}. "
                        "Use the --force flag to update anyway")
                stored.id = previous.id
                stored.version = previous.version + 1
                stored.revision = previous.revision + 1
                stored.create_time = previous.create_time
                data = self._write_job(stored, previous.revision)
            self._db.execute(  # the version as stored: the same bytes as the job row
                "INSERT INTO job_versions (job_id, version, data) VALUES (?,?,?)",
                (stored.id, stored.version, data))
        return stored, previous

    def update_job_state(
        self, job_id: str, state: JobState, *, expected_revision: int | None = None
    ) -> Job:
        """Set a job's state (revision + 1). `expected_revision` makes it conditional."""
        with self.transaction():
            job = self.get_job(job_id)
            if expected_revision is not None and job.revision != expected_revision:
                raise RevisionConflictError(
                    f"job {job_id} changed concurrently: revision {job.revision}, "
                    f"expected {expected_revision}")
            expected = job.revision
            job.state = state
            job.revision += 1
            job.modify_time = now_ns()
            self._write_job(job, expected)
        return job

    def _write_job(self, job: Job, expected_revision: int) -> bytes:
        """Write `job` if its stored revision is `expected_revision`; returns its bytes."""
        data = dumps(job.to_dict())
        cur = self._db.execute(
            "UPDATE jobs SET name = ?, type = ?, state = ?, version = ?, revision = ?, "
            "modify_time = ?, labels = ?, data = ? WHERE id = ? AND revision = ?",
            (job.name, job.type, job.state.state_type, job.version, job.revision,
             job.modify_time, dumps(job.labels).decode(), data, job.id, expected_revision))
        if cur.rowcount != 1:
            self.get_job(job.id)  # NotFoundError if it vanished
            raise RevisionConflictError(
                f"job {job.id} changed concurrently (expected revision {expected_revision})")
        self._cache_job(job, data)
        return data

    def _cache_job(self, job: Job, data: bytes) -> None:
        """Remember what was just written: the next read of the same bytes skips parsing
        (an entry is only used while the stored bytes equal it, so a rollback is harmless)."""
        if len(self._jobs) >= JOB_CACHE_SIZE and job.id not in self._jobs:
            del self._jobs[next(iter(self._jobs))]
        self._jobs[job.id] = (data, job.copy())

    def _job(self, job_id: str, data: bytes | str) -> Job:
        """The job stored as `data` (a private copy), parsed only if not cached."""
        cached = self._jobs.get(job_id)
        if cached is not None and cached[0] == data:
            return cached[1].copy()
        job = Job.from_dict(loads(data))
        if len(self._jobs) >= JOB_CACHE_SIZE:
            del self._jobs[next(iter(self._jobs))]
        self._jobs[job_id] = (data, job.copy())
        return job

    def get_job(self, job_id: str) -> Job:
        row = self._db.query_one("SELECT data FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"job not found: {job_id}")
        return self._job(job_id, row[0])

    def find_job(self, id_or_name: str, namespace: str | None = "default") -> Job:
        """Look a job up by name (in `namespace`), then by ID, then by unique ID prefix."""
        return self._job(*self.find_job_json(id_or_name, namespace))

    def find_job_json(self, id_or_name: str, namespace: str | None = "default"
                      ) -> tuple[str, bytes]:
        """`find_job`'s (id, stored JSON): the bytes are `dumps(job.to_dict())` of the
        stored job, unparsed (what an API answer can carry as they are)."""
        key = id_or_name.strip()
        if not key:
            raise NotFoundError("job not found: (empty id)")
        if namespace in (None, "", "*"):
            rows = self._db.query("SELECT id, data FROM jobs WHERE name = ? LIMIT 2", (key,))
        else:
            rows = self._db.query(
                "SELECT id, data FROM jobs WHERE namespace = ? AND name = ?", (namespace, key))
        if len(rows) != 1:
            rows = self._db.query("SELECT id, data FROM jobs WHERE id = ?", (key,))
        if not rows and not is_full_id(key):
            rows = self._db.query("SELECT id, data FROM jobs WHERE id >= ? AND id < ? LIMIT 2",
                                  (key, prefix_upper(key)))
            if len(rows) > 1:
                raise MultipleMatchesError(
                    f"multiple jobs found for id {key}",
                    hint="use a longer prefix of the job ID, or the full ID")
        if len(rows) != 1:
            raise NotFoundError(f"job not found: {key}")
        data = rows[0][1]
        return rows[0][0], data.encode() if isinstance(data, str) else bytes(data)

    def list_jobs(
        self,
        namespace: str | None = None,
        *,
        limit: int = 0,
        offset: int = 0,
        order_by: str = "created_at",
        reverse: bool = False,
        selector: Sequence[LabelSelectorRequirement] = (),
        states: Iterable[str] = (),
        types: Iterable[str] = (),
    ) -> tuple[list[Job], bool]:
        """A page of jobs and whether more exist. limit 0 = all; `namespace` None/`*` = all."""
        column = ORDER_COLUMNS.get(order_by)
        if column is None:
            raise ValidationError(
                f'invalid order_by "{order_by}": use created_at or modified_at')
        where: list[str] = []
        params: list[Any] = []
        if namespace not in (None, "", "*"):
            where.append("namespace = ?")
            params.append(namespace)
        states = list(states)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        types = list(types)
        if types:
            where.append(f"type IN ({','.join('?' * len(types))})")
            params.extend(types)
        direction = "DESC" if reverse else "ASC"
        sql = "SELECT labels, data FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {column} {direction}, id {direction}"
        if not selector:
            if limit > 0:
                sql += " LIMIT ? OFFSET ?"
                params.extend((limit + 1, max(offset, 0)))
            elif offset > 0:
                sql += " LIMIT -1 OFFSET ?"
                params.append(offset)
            rows = self._db.query(sql, params)
        else:
            rows = [r for r in self._db.query(sql, params)
                    if matches_selector(loads(r["labels"]), list(selector))]
            rows = rows[max(offset, 0):]
            if limit > 0:
                rows = rows[:limit + 1]
        more = limit > 0 and len(rows) > limit
        if more:
            rows = rows[:limit]
        return [Job.from_dict(loads(r["data"])) for r in rows], more

    def job_versions(self, job_id: str) -> list[Job]:
        current = self.get_job(job_id)
        rows = self._db.query(
            "SELECT version, data FROM job_versions WHERE job_id = ? ORDER BY version",
            (job_id,))
        return [current if r["version"] == current.version else Job.from_dict(loads(r["data"]))
                for r in rows]

    def get_job_version(self, job_id: str, version: int) -> Job:
        current = self.get_job(job_id)
        if version in (0, current.version):
            return current
        row = self._db.query_one(
            "SELECT data FROM job_versions WHERE job_id = ? AND version = ?", (job_id, version))
        if row is None:
            raise NotFoundError(f"job {job_id} has no version {version}")
        return Job.from_dict(loads(row["data"]))

    # ----- executions -------------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> None:
        if not execution.create_time:
            execution.create_time = now_ns()
        if not execution.modify_time:
            execution.modify_time = execution.create_time
        self._db.execute(
            "INSERT INTO executions (id, job_id, node_id, job_version, desired_state, "
            "compute_state, revision, create_time, modify_time, data) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (execution.id, execution.job_id, execution.node_id, execution.job_version,
             execution.desired_state.state_type, execution.compute_state.state_type,
             execution.revision, execution.create_time, execution.modify_time,
             dumps(execution.to_dict(include_job=False))))
        self._written(execution)

    def update_execution(self, execution: Execution, *, expected_revision: int) -> None:
        """Write `execution` if its stored revision is `expected_revision`; bumps revision."""
        execution.revision = expected_revision + 1
        execution.modify_time = now_ns()
        cur = self._db.execute(
            "UPDATE executions SET desired_state = ?, compute_state = ?, revision = ?, "
            "modify_time = ?, data = ? WHERE id = ? AND revision = ?",
            (execution.desired_state.state_type, execution.compute_state.state_type,
             execution.revision, execution.modify_time,
             dumps(execution.to_dict(include_job=False)), execution.id, expected_revision))
        if cur.rowcount != 1:
            self.get_execution(execution.id)
            raise RevisionConflictError(
                f"execution {execution.id} changed concurrently "
                f"(expected revision {expected_revision})")
        self._written(execution)

    def _written(self, execution: Execution) -> None:
        """Tell the execution listeners once this write's transaction block succeeded (not at
        the group's COMMIT: the next plan must count what this one placed)."""
        if self.execution_listeners:
            live = (execution.desired_state.state_type != ExecutionDesiredStateType.STOPPED
                    and not execution.compute_state_type.is_terminal())
            args = (execution.id, execution.node_id, execution.job_id, live)
            for listener in self.execution_listeners:
                self._db.after_block(functools.partial(listener, *args))

    def live_executions(self) -> list[Execution]:
        """Executions not desired Stopped whose compute state is not terminal."""
        terminal = [int(s) for s in ExecutionStateType if s.is_terminal()]
        marks = ",".join("?" * len(terminal))
        rows = self._db.query(
            f"SELECT data FROM executions WHERE desired_state != ? AND compute_state NOT IN "
            f"({marks})", (int(ExecutionDesiredStateType.STOPPED), *terminal))
        return [Execution.from_dict(loads(r["data"])) for r in rows]

    def get_execution(self, execution_id: str) -> Execution:
        row = self._db.query_one("SELECT data FROM executions WHERE id = ?", (execution_id,))
        if row is None:
            raise NotFoundError(f"execution not found: {execution_id}",
                                component="JobStore")
        return Execution.from_dict(loads(row["data"]))

    def get_executions(
        self,
        job_id: str,
        *,
        job_version: int | None = None,
        order_by: str = "created_at",
        reverse: bool = False,
    ) -> list[Execution]:
        """Executions of a job (of one version if given), oldest first unless `reverse`."""
        column = ORDER_COLUMNS.get(order_by)
        if column is None:
            raise ValidationError(
                f'invalid order_by "{order_by}": use created_at or modified_at')
        direction = "DESC" if reverse else "ASC"
        sql = "SELECT data FROM executions WHERE job_id = ?"
        params: list[Any] = [job_id]
        if job_version:
            sql += " AND job_version = ?"
            params.append(job_version)
        sql += f" ORDER BY {column} {direction}, id {direction}"
        return [Execution.from_dict(loads(r["data"])) for r in self._db.query(sql, params)]

    def active_executions_on_node(self, node_id: str) -> list[Execution]:
        """Executions on a node whose desired state is not Stopped."""
        rows = self._db.query(
            "SELECT data FROM executions WHERE node_id = ? AND desired_state != 2", (node_id,))
        return [Execution.from_dict(loads(r["data"])) for r in rows]
