"""The Python SDK: `Client` (blocking) and `AsyncClient` over a node's REST API, on the typed
models of `bacalhau.models` (build jobs with `Job.wasm(...)` / `Job.docker(...)`).

    from bacalhau import Client, Job

    with Client() as client:            # BACALHAU_API_HOST/PORT, or 127.0.0.1:1234
        run = client.run(Job.wasm("hello.wasm", "world"))
        print(run.stdout)

`client.py` holds the async client and the result types, `sync.py` the blocking one,
`builders.py` the job builders (the CLI's own), `errors.py` what they raise.
"""

from bacalhau.sdk.client import AsyncClient, JobRun, LogLine, SubmitResult
from bacalhau.sdk.errors import (
    APIError,
    APIUnreachableError,
    JobFailedError,
    NoResultsError,
    ResultDownloadFailedError,
    ResultVerificationError,
    WaitTimeoutError,
)
from bacalhau.sdk.sync import Client

__all__ = ["APIError", "APIUnreachableError", "AsyncClient", "Client", "JobFailedError",
           "JobRun", "LogLine", "NoResultsError", "ResultDownloadFailedError",
           "ResultVerificationError", "SubmitResult", "WaitTimeoutError"]
