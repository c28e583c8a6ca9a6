"""The evaluations part of the orchestrator's job store (`bacalhau.store.jobstore.JobStore`,
split out by concern): each evaluation is a row written with the state change that asked for
it, so that a restarted requester finds the ones still pending (`pending_evaluations`) and
processes them again; the planner marks an evaluation complete in the transaction that applies
its plan (`finish_evaluation`).
"""

from __future__ import annotations

from collections.abc import Iterable

from bacalhau.errors import NotFoundError
from bacalhau.models import EvalStatus, Evaluation
from bacalhau.models.codec import dumps, loads
from bacalhau.models.timeutil import now_ns
from bacalhau.store.sqlite import Database


class JobEvaluations:
    """The evaluation methods of `JobStore` (which provides `_db`)."""

    _db: Database

    def create_evaluation(self, evaluation: Evaluation) -> None:
        if not evaluation.create_time:
            evaluation.create_time = now_ns()
        evaluation.modify_time = evaluation.modify_time or evaluation.create_time
        self._db.execute(
            "INSERT INTO evaluations (id, job_id, status, create_time, data) VALUES (?,?,?,?,?)",
            (evaluation.id, evaluation.job_id, evaluation.status, evaluation.create_time,
             dumps(evaluation.to_dict())))

    def set_evaluation_status(self, evaluation_ids: Iterable[str], status: str) -> None:
        """Set the status of evaluations known by id (each row read, then written as
        `finish_evaluation` writes a held one)."""
        ids = list(evaluation_ids)
        if len(ids) == 1:
            rows = self._db.query("SELECT id, data FROM evaluations WHERE id = ?", (ids[0],))
        else:
            rows = self._db.query(
                "SELECT id, data FROM evaluations WHERE id IN (SELECT value FROM json_each(?))",
                (dumps(ids).decode(),))
        for row in rows:
            self.finish_evaluation(Evaluation.from_dict(loads(row["data"])), status)

    def finish_evaluation(self, evaluation: Evaluation, status: str) -> None:
        """`set_evaluation_status` for an evaluation the caller holds as this store wrote or
        read it (the broker's, the planner's): its row is written from the object, with no
        read and parse of the row first. The object itself is left as it is."""
        data = evaluation.to_dict()
        data["Status"], data["ModifyTime"] = status, now_ns()
        self._db.execute("UPDATE evaluations SET status = ?, data = ? WHERE id = ?",
                         (status, dumps(data), evaluation.id))

    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        row = self._db.query_one("SELECT data FROM evaluations WHERE id = ?", (evaluation_id,))
        if row is None:
            raise NotFoundError(f"evaluation not found: {evaluation_id}")
        return Evaluation.from_dict(loads(row["data"]))

    def prune_evaluations(self, older_than_ns: int) -> int:
        """Delete finished (not pending) evaluations created before `older_than_ns`."""
        cur = self._db.execute(
            "DELETE FROM evaluations WHERE status != ? AND create_time < ?",
            (EvalStatus.PENDING, older_than_ns))
        return cur.rowcount

    def pending_evaluations(self) -> list[Evaluation]:
        rows = self._db.query(
            "SELECT data FROM evaluations WHERE status = ? ORDER BY create_time",
            (EvalStatus.PENDING,))
        return [Evaluation.from_dict(loads(r["data"])) for r in rows]
