"""bacalhau-py: a compute-over-data network with a Python control plane and a Rust core.

The Python SDK is importable from here: `from bacalhau import Client, AsyncClient, Job`
(see `bacalhau.sdk`). Importing `bacalhau` itself loads nothing else: each name is imported
on first use, so the CLI and the node start without the SDK and the SDK without the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bacalhau.models import InputSource, Job, SpecConfig
    from bacalhau.sdk import (
        APIError,
        APIUnreachableError,
        AsyncClient,
        Client,
        JobFailedError,
        JobRun,
        LogLine,
        NoResultsError,
        ResultDownloadFailedError,
        ResultVerificationError,
        SubmitResult,
        WaitTimeoutError,
    )

_SDK_NAMES = frozenset({
    "APIError", "APIUnreachableError", "AsyncClient", "Client", "JobFailedError", "JobRun",
    "LogLine", "NoResultsError", "ResultDownloadFailedError", "ResultVerificationError",
    "SubmitResult", "WaitTimeoutError",
})
_MODEL_NAMES = frozenset({"InputSource", "Job", "SpecConfig"})

__all__ = [
    "APIError", "APIUnreachableError", "AsyncClient", "Client", "InputSource", "Job",
    "JobFailedError", "JobRun", "LogLine", "NoResultsError", "ResultDownloadFailedError",
    "ResultVerificationError", "SpecConfig", "SubmitResult", "WaitTimeoutError",
]


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        from bacalhau import sdk

        return getattr(sdk, name)
    if name in _MODEL_NAMES:
        from bacalhau import models

        return getattr(models, name)
    raise AttributeError(f"module 'bacalhau' has no attribute {name!r}")
