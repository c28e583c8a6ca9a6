"""Why a result download failed, told so that the user knows which party to turn to.

`job get` / `--download` talk to the API first (the job's results and executions) and then to
wherever each result lives: the compute node's own result server (`local` publisher, results
of type `urlDownload`), an S3 endpoint (`s3` with this machine's credentials, or an
`s3PreSigned` URL), IPFS nodes (`ipfs`). A failure of one of those is a `ResultDownloadError`
naming the execution, the compute node that published it and what was tried (URL, S3 object,
CID), with a hint for that kind of result. Only a failure to reach the API itself is reported
as an API problem (`cli.common.friendly_error`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bacalhau.api.client import ClientError

KEEP_RESULTS_HINT = ("or run the job again publishing with -p s3://BUCKET/PREFIX or -p ipfs, "
                     "so that its results outlive the node")


@dataclass(slots=True)
class ResultSource:
    """Where one result lives and who published it (execution and node may be unknown: "")."""

    kind: str  # the published result's Type, lower-cased: urldownload, s3presigned, s3, ipfs
    location: str  # URL, s3://bucket/key or ipfs://CID
    execution_id: str = ""
    node_id: str = ""
    endpoint: str = ""  # s3: the endpoint URL; ipfs: the IPFS RPC endpoint ("" = embedded)
    swarm: tuple[str, ...] = ()  # ipfs: the publishing node's swarm addresses


class ResultDownloadError(Exception):
    """Some results could not be fetched; `str()` lists each with its reason, `hint` says what
    to do. Never an API failure: the API answered with where the results are."""

    def __init__(self, failures: list[str], hints: list[str]) -> None:
        self.failures = failures
        self.hint = "\n".join(dict.fromkeys(h for h in hints if h))  # distinct, in order
        if len(failures) == 1:
            text = failures[0]
        else:
            text = f"{len(failures)} results could not be downloaded:\n" + "\n".join(
                f"- {line}" for line in failures)
        super().__init__(text)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\nHint: {self.hint}" if self.hint else text


def download_error(job_id: str, failed: list[tuple[ResultSource, BaseException]],
                   timeout: float) -> ResultDownloadError:
    """One error for every (source, exception) of a `job get`."""
    return ResultDownloadError([describe(src, exc, timeout) for src, exc in failed],
                               [advice(job_id, src, exc) for src, exc in failed])


def describe(src: ResultSource, exc: BaseException, timeout: float) -> str:
    """One line: could not download the result of execution E from compute node N (what
    was tried): why."""
    who = f"execution {src.execution_id}" if src.execution_id else "an execution"
    node = f" from compute node {src.node_id}" if src.node_id else ""
    return f"could not download the result of {who}{node} ({_what(src)}): " \
           f"{_why(exc, timeout)}"


def _what(src: ResultSource) -> str:
    if src.kind == "urldownload":
        return f"GET {src.location}"
    if src.kind == "s3presigned":
        parts = urlsplit(src.location)  # the signature stays out of the message
        return f"presigned S3 URL {parts.scheme}://{parts.netloc}{parts.path}"
    if src.kind == "s3":
        return f"{src.location} at {src.endpoint or 'the default AWS endpoint'}"
    if src.kind == "ipfs":
        through = (f"the IPFS node at {src.endpoint}" if src.endpoint
                   else "a short-lived IPFS node dialling "
                        + (", ".join(src.swarm) if src.swarm else "no peers"))
        return f"IPFS CID {src.location.removeprefix('ipfs://')} through {through}"
    return src.location


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        reason = os.strerror(errno).lower() if errno else str(exc.os_error)
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    if isinstance(exc, ClientError):
        return exc.message if exc.message.startswith("HTTP ") else \
            f"HTTP {exc.status}: {exc.message}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"answered HTTP {exc.status} {exc.message}"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"did not finish within {timeout:g}s"
    if isinstance(exc, aiohttp.ClientError):
        return f"the connection failed: {exc}"
    text = str(exc).strip() or type(exc).__name__
    return text.split("\nHint:", 1)[0]


def _status(exc: BaseException) -> int:
    """The HTTP status of a refusal (ClientError, aiohttp's, S3DownloadError), else 0."""
    status = getattr(exc, "status", 0)
    return status if isinstance(status, int) else 0


def advice(job_id: str, src: ResultSource, exc: BaseException) -> str:
    """What the user can do about this failure."""
    node = f"compute node {src.node_id}" if src.node_id else "the compute node that ran it"
    again = f"`bacalhau job get {job_id}` again"
    status = _status(exc)
    if src.kind == "urldownload":
        if status == 404:
            return (f"{node} no longer holds this result (its results folder was cleaned or "
                    f"its data dir changed); {KEEP_RESULTS_HINT}")
        if status:
            return f"{node} serves this result itself (published with -p local) and refused " \
                   f"it; look at that node's log, {KEEP_RESULTS_HINT}"
        return (f"{node} serves this result itself (published with -p local) and is not "
                "reachable: bring that node back (start its `bacalhau serve` again with the "
                f"same data dir) and run {again}, {KEEP_RESULTS_HINT}")
    if src.kind == "s3presigned":
        if status in (400, 403):
            return f"the presigned URL expired or was refused: run {again} for a fresh one"
        host = urlsplit(src.location).netloc
        return (f"this machine must reach the S3 endpoint {host} that the URL points to; "
                f"check the network or proxy between here and there, then run {again}")
    if src.kind == "s3":
        return ("this machine fetches s3 results itself: check its AWS credentials "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile) and that the S3 "
                "endpoint is reachable from here, or ask the requester's operator to enable "
                "presigned result URLs")
    if src.kind == "ipfs":
        # the IPFS layer's own hint knows best what was missing (a peer, a swarm key)
        return str(getattr(exc, "hint", "") or "") or (
            f"an IPFS node holding the CID must be reachable: start {node}'s IPFS node "
            "again, or name one that holds it with --ipfs-connect (an IPFS RPC endpoint) or "
            "--ipfs-swarm-addrs")
    return str(getattr(exc, "hint", "") or "")


def failures_of(sources: list[Any], outcomes: list[Any]) -> list[tuple[Any, BaseException]]:
    """The (source, exception) pairs of `asyncio.gather(..., return_exceptions=True)`."""
    return [(src, out) for src, out in zip(sources, outcomes, strict=True)
            if isinstance(out, BaseException)]
