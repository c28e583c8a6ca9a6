"""What the SDK raises, beside the server's own errors (`APIError`: the APIError body of
reference §3.4, with the server's message, hint, code and status)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bacalhau.api.client import ClientError as APIError
from bacalhau.errors import BacalhauError

if TYPE_CHECKING:
    from bacalhau.models import Execution, Job


class APIUnreachableError(BacalhauError):
    """No answer from the API at all (refused, reset, timed out): not an error of the server."""

    code = "APIUnreachable"
    component = "Client"


class JobFailedError(BacalhauError):
    """`run()` of a job that ended Failed or Stopped; `job` and `executions` say why."""

    code = "JobFailed"
    component = "Client"

    def __init__(self, job: Job, executions: list[Execution]) -> None:
        reasons = [e.compute_state.message for e in executions if e.compute_state.message]
        reason = job.state.message or "no reason given"
        message = f"job {job.id} ended {job.state.state_type}: {reason}"
        if reasons and reasons[-1] not in message:
            message += f" (last execution: {reasons[-1]})"
        super().__init__(message, hint=f"see `bacalhau job describe {job.id}` for its events")
        self.job = job
        self.executions = executions


class WaitTimeoutError(BacalhauError, TimeoutError):
    """`wait()`/`run()` ran out of time; the job keeps running on the network."""

    code = "WaitTimeout"
    component = "Client"


class NoResultsError(BacalhauError):
    """The job published nothing that can be downloaded."""

    code = "NoResults"
    component = "Client"


class ResultDownloadFailedError(BacalhauError):
    """Some results could not be fetched from where they live (a compute node's result
    server, S3, IPFS): the message names each execution, node and location, the hint what to
    do. Not an API failure: the API answered with where the results are."""

    code = "ResultDownloadFailed"
    component = "Client"

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


class ResultVerificationError(BacalhauError):
    """A downloaded result's content does not hash to the CID its compute node published;
    nothing was written."""

    code = "ResultMismatch"
    component = "Client"


__all__ = ["APIError", "APIUnreachableError", "JobFailedError", "NoResultsError",
           "ResultDownloadFailedError", "ResultVerificationError", "WaitTimeoutError"]
