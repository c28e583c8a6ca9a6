"""`job get`: download every published result of a job and merge them (reference §4.4).

Each result is fetched into `<out>/raw/` (file name = sanitized `host_port_path`), then the Rust
merge (`bacalhau._native.merge_results`) extracts and merges the archives into `<out>`,
appending stdout/stderr/exitCode and refusing any other collision before writing anything
(with `--raw`, each archive is extracted to `<out>/raw/<name>/` instead).

Before anything is merged, every result that carries a CID (`Params["CID"]`, attached by the
compute node: `bacalhau.content.results_cid`) is unpacked into a scratch folder and its CID
recomputed; a mismatch refuses the whole download (`ResultMismatch`, naming the execution and
both CIDs), and the downloads are removed so nothing is left in `<out>`.

The job's executions say who published each result (matched by the published spec, its CID
or the execution id in its URL): a result that cannot be fetched raises
`cli.result_errors.ResultDownloadError` naming its execution, its compute node and what was
tried, never an API error. Every download runs to its end (or the shared deadline), so one
error lists every failed result. Result URLs are fetched without the API's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import click

from bacalhau import failpoints
from bacalhau.api.client import AsyncClient, ClientError
from bacalhau.cli.output import dump
from bacalhau.cli.result_errors import (
    ResultDownloadError,
    ResultSource,
    download_error,
    failures_of,
)
from bacalhau.cli.s3results import (
    download_presigned,
    download_s3,
    s3_source,
    s3_url,
    source_spec_cid,
)
from bacalhau.models import SpecConfig


class NoResults(Exception):
    """The job has no downloadable result."""


class ResultMismatch(Exception):
    """A downloaded result's recomputed CID differs from the one the compute node published."""

    def __init__(self, execution_id: str, expected: str, actual: str) -> None:
        self.execution_id = execution_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"result of execution {execution_id} failed verification: the node published CID "
            f"{expected} but the downloaded result has CID {actual}; nothing was written"
        )


@dataclass(slots=True)
class Download:
    """One result to fetch: where from, where to, and what it should hash to."""

    url: str
    target: Path
    cid: str = ""
    execution_id: str = ""
    s3: SpecConfig | None = None  # an `s3` result fetched with boto3 (cli/s3results.py)
    presigned: bool = False
    swarm: list[str] | None = None  # ipfs results: peers that hold the CID
    kind: str = ""  # the result's Type, lower-cased
    node_id: str = ""  # the compute node that published it ("" = unknown)
    spec: dict[str, Any] | None = None  # the result as the API listed it

    def source(self, ipfs: tuple[str, list[str]] = ("", [])) -> ResultSource:
        """Where this result lives and who published it, for error messages; `ipfs`: the
        client's IPFS endpoint and configured peers."""
        endpoint, peers = ipfs if self.swarm is not None else ("", [])
        if self.s3 is not None:
            endpoint = str(self.s3.param("Endpoint") or "")
        swarm = dict.fromkeys([*(self.swarm or ()), *peers])
        return ResultSource(self.kind, self.url, self.execution_id, self.node_id, endpoint,
                            tuple(swarm))


def result_cid(result: dict[str, Any]) -> str:
    """The CID a published result carries (`Params["CID"]`, any case), or ""."""
    params = {str(k).lower(): v for k, v in (result.get("Params") or {}).items()}
    return str(params.get("cid", "") or "") or source_spec_cid(result)


def verify_download(archive: Path, expected: str, execution_id: str, scratch: Path) -> str:
    """Unpack `archive` into a fresh folder under `scratch`, recompute its CID and compare it
    with `expected`; returns the CID, raises `ResultMismatch`. The folder is removed."""
    from bacalhau import _native
    from bacalhau.content import results_cid

    folder = Path(tempfile.mkdtemp(prefix="verify-", dir=scratch))
    try:
        _native.unpack(str(archive), str(folder))
        actual = results_cid(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if actual != expected:
        raise ResultMismatch(execution_id, expected, actual)
    return actual


async def _attach_origins(client: AsyncClient, job_id: str, namespace: str,
                          downloads: list[Download]) -> None:
    """Fill each download's execution id and node id from the job's executions (they name the
    party in a refusal or a failed download); nothing when the API cannot list them."""
    try:
        answer = await client.job_executions(job_id, namespace=namespace)
    except Exception:  # an older server or a partial API: downloads do not need it
        return
    executions = [e for e in answer.get("Items") or [] if isinstance(e, dict)]
    for d in downloads:
        match = _origin(d, executions)
        if match is not None:
            d.execution_id = str(match.get("ID", "") or "")
            d.node_id = str(match.get("NodeID", "") or "")


def _origin(d: Download, executions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The execution that published `d`: same published spec, else same CID, else the
    execution id named in the result's URL (`<id>.tar.gz` of the local publisher)."""
    published = [(e, e.get("PublishedResult") or {}) for e in executions]
    for execution, spec in published:
        if spec and spec == d.spec:
            return execution
    if d.cid:
        for execution, spec in published:
            if result_cid(spec) == d.cid:
                return execution
    path = urlsplit(d.url).path
    for execution, _spec in published:
        if execution.get("ID") and path.endswith(f"/{execution['ID']}.tar.gz"):
            return execution
    return None


def result_url(result: dict[str, Any]) -> str:
    """The HTTP URL of a published result, or "" when its type cannot be downloaded here."""
    kind = str(result.get("Type", "")).lower()
    params = {str(k).lower(): v for k, v in (result.get("Params") or {}).items()}
    if kind == "urldownload":
        return str(params.get("url", ""))
    if kind == "s3presigned":
        return str(params.get("presignedurl", ""))
    return ""


def raw_file_name(url: str) -> str:
    """`host_port_path` with anything but `[A-Za-z0-9._-]` replaced by `_`."""
    if url.startswith("ipfs://"):  # an ipfs result (bacalhau.ipfs.results)
        return re.sub(r"[^A-Za-z0-9._-]", "_", f"ipfs_{url[len('ipfs://'):]}.tar.gz")
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = f"{parts.hostname or 'result'}_{port}_{parts.path.strip('/')}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def default_output_dir(job_id: str, namespace: str = "") -> Path:
    if namespace and namespace != "default":
        return Path(f"job-{namespace}-{job_id}")
    return Path(f"job-{job_id}")


async def _fetch(d: Download, timeout: float) -> Path:
    """One result into `d.target`: S3 ones through cli/s3results.py, others by HTTP GET
    (a fresh session: the API's credentials are not sent to result servers)."""
    if d.s3 is not None:
        return await asyncio.to_thread(download_s3, d.s3, d.target)
    if d.presigned:
        return await download_presigned(d.url, d.target, timeout=timeout)
    return await fetch_url(d.url, d.target, timeout=timeout)


async def fetch_url(url: str, dest: Path, *, timeout: float = 300.0) -> Path:
    """GET a result URL into `dest`; an error answer raises `ClientError` with its status."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.get(url) as resp,
    ):
        if resp.status >= 400:
            raise ClientError.from_response(resp.status, await resp.read())
        with dest.open("wb") as fh:
            async for chunk in resp.content.iter_chunked(1 << 16):
                fh.write(chunk)
    return dest


def _ipfs_client_side(config: Any) -> tuple[str, list[str]]:
    """The IPFS RPC endpoint `job get` fetches through ("" = a short-lived embedded node) and
    the peers that node dials besides the results' own."""
    try:
        cfg = config() if callable(config) else config
        if cfg is None:
            return "", []
        return (str(cfg.get("ResultDownloaders.Types.IPFS.Endpoint") or ""),
                cfg.strings("IPFS.Embedded.Peers"))
    except Exception:  # a bad config fails the download itself, with its own message
        return "", []


async def _fetch_all(downloads: list[Download], *, job_id: str, timeout: float, config: Any,
                     ipfs_repo: Path | None) -> None:
    """Every download to its end (or the deadline); `ResultDownloadError` lists each failed
    one with its execution, node and what was tried."""
    from bacalhau.ipfs.results import fetch_archives

    plain = [d for d in downloads if d.swarm is None]
    ipfs = [d for d in downloads if d.swarm is not None]
    tasks = [asyncio.ensure_future(_fetch(d, timeout)) for d in plain]
    if ipfs:
        tasks.append(asyncio.ensure_future(fetch_archives(
            [(d.cid, d.swarm or [], d.target) for d in ipfs], config=config, repo=ipfs_repo,
            # its own deadline first, so the error names the CID
            timeout=max(1.0, timeout * 0.9))))
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    outcomes: list[Any] = []
    for task in tasks:
        if task in pending:
            outcomes.append(TimeoutError())
            with contextlib.suppress(BaseException):
                await task
        else:
            outcomes.append(task.exception() or task.result())
    failed = failures_of(plain, outcomes[:len(plain)])
    if ipfs and isinstance(outcomes[-1], BaseException):
        failed += [(d, outcomes[-1]) for d in ipfs if not d.target.is_file()]
    if failed:
        client_side = _ipfs_client_side(config) if ipfs else ("", [])
        raise download_error(job_id, [(d.source(client_side), exc) for d, exc in failed],
                             timeout)


def merge_function() -> Any:
    """`bacalhau._native.merge_results`, or a clear error when this build lacks it."""
    from bacalhau import _native

    merge = getattr(_native, "merge_results", None)
    if merge is None:
        raise click.ClickException(
            "this build has no result merging (bacalhau._native.merge_results is missing); "
            "rebuild the native module with `maturin develop`"
        )
    return merge


async def download_results(
    client: AsyncClient,
    job_id: str,
    out_dir: Path,
    *,
    raw: bool = False,
    timeout: float = 300.0,
    namespace: str = "",
    echo: Any = click.echo,
    config: Any = None,
    ipfs_repo: Path | None = None,
) -> list[str]:
    """Download and merge the job's results into `out_dir`; return the merged file paths.
    `config` (a `Config` or a callable making one) says how `ipfs` results are fetched
    (`bacalhau.ipfs.wiring.downloader`); None: the default config. `ipfs_repo`: the
    short-lived embedded node's repo (kept afterwards), else a temporary one.

    Raises `NoResults` when the job published nothing downloadable.
    """
    from bacalhau.ipfs.results import ipfs_result

    items = (await client.job_results(job_id, namespace=namespace)).get("Items") or []
    downloads: list[Download] = []
    for result in items:
        kind = str(result.get("Type", "")).lower()
        if url := result_url(result):
            downloads.append(Download(url, Path(), cid=result_cid(result),
                                      presigned=kind == "s3presigned", kind=kind, spec=result))
        elif (s3 := s3_source(result)) is not None:
            downloads.append(Download(s3_url(s3), Path(), cid=result_cid(result), s3=s3,
                                      kind=kind, spec=result))
        elif ipfs := ipfs_result(result):
            downloads.append(Download(f"ipfs://{ipfs[0]}", Path(), cid=ipfs[0], swarm=ipfs[1],
                                      kind=kind, spec=result))
        else:
            echo(
                f"Cannot download a result of type {result.get('Type')!r}; its description:\n"
                + dump(result, "json"),
                err=True,
            )
    if not downloads:
        raise NoResults(job_id)
    await _attach_origins(client, job_id, namespace, downloads)

    created = [p for p in (out_dir, out_dir / "raw") if not p.exists()]
    raw_dir = out_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    for index, d in enumerate(downloads):
        name = raw_file_name(d.url)
        if d.s3 is not None and not name.endswith((".tar.gz", ".tgz")):
            name += ".tar.gz"  # a plain S3 prefix is packed into one archive
        if name in names:
            name = f"{index}_{name}"
        names.add(name)
        d.target = raw_dir / name
    try:
        await _fetch_all(downloads, job_id=job_id, timeout=timeout, config=config,
                         ipfs_repo=ipfs_repo)
        # Results of nodes that attach no CID (e.g. upstream Bacalhau) are merged unverified;
        # say so only when others of the same job were verified, as that looks like tampering.
        unverified = [d for d in downloads if not d.cid]
        if unverified and len(unverified) < len(downloads):
            echo(f"Warning: {len(unverified)} result(s) carry no CID and were not verified",
                 err=True)
        await failpoints.hit_async("download.mid")
        for d in downloads:
            if d.cid:
                await asyncio.to_thread(verify_download, d.target, d.cid,
                                        d.execution_id or f"(unknown, result {d.url})", raw_dir)
    except (ResultMismatch, ResultDownloadError):
        # Nothing of this job may stay in out_dir: drop the downloads and what we created.
        for d in downloads:
            d.target.unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise

    await failpoints.hit_async("merge.mid")
    merge = merge_function()
    archives = [str(d.target) for d in downloads]
    written = await asyncio.to_thread(merge, archives, str(out_dir), raw)
    # The archives are merged (or, with raw, extracted to raw/<stem>/); only the extracted
    # files stay. On a merge error they are kept for the user to look at.
    for d in downloads:
        d.target.unlink(missing_ok=True)
    try:
        raw_dir.rmdir()
    except OSError:
        pass  # raw mode: the per-result folders are there
    return list(written)
