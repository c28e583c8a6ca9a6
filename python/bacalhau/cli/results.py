"""`job get`: download every published result of a job and merge them (reference §4.4).

Each result is fetched into `<out>/raw/` (file name = sanitized `host_port_path`), then the Rust
merge (`bacalhau._native.merge_results`) extracts and merges the archives into `<out>`,
appending stdout/stderr/exitCode and refusing any other collision before writing anything
(with `--raw`, each archive is extracted to `<out>/raw/<name>/` instead).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from bacalhau.api.client import AsyncClient
from bacalhau.cli.output import dump


class NoResults(Exception):
    """The job has no downloadable result."""


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
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = f"{parts.hostname or 'result'}_{port}_{parts.path.strip('/')}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def default_output_dir(job_id: str, namespace: str = "") -> Path:
    if namespace and namespace != "default":
        return Path(f"job-{namespace}-{job_id}")
    return Path(f"job-{job_id}")


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
) -> list[str]:
    """Download and merge the job's results into `out_dir`; return the merged file paths.

    Raises `NoResults` when the job published nothing downloadable.
    """
    items = (await client.job_results(job_id, namespace=namespace)).get("Items") or []
    urls: list[str] = []
    for result in items:
        if url := result_url(result):
            urls.append(url)
        else:
            echo(
                f"Cannot download a result of type {result.get('Type')!r}; its description:\n"
                + dump(result, "json"),
                err=True,
            )
    if not urls:
        raise NoResults(job_id)

    raw_dir = out_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    targets = []
    for index, url in enumerate(urls):
        name = raw_file_name(url)
        if any(t.name == name for t in targets):
            name = f"{index}_{name}"
        targets.append(raw_dir / name)
    await asyncio.wait_for(
        asyncio.gather(
            *(client.download(u, t, timeout=timeout) for u, t in zip(urls, targets, strict=True))
        ),
        timeout=timeout,
    )

    merge = merge_function()
    archives = [str(t) for t in targets]
    written = await asyncio.to_thread(merge, archives, str(out_dir), raw)
    # The archives are merged (or, with raw, extracted to raw/<stem>/); only the extracted
    # files stay. On a merge error they are kept for the user to look at.
    for target in targets:
        target.unlink(missing_ok=True)
    try:
        raw_dir.rmdir()
    except OSError:
        pass  # raw mode: the per-result folders are there
    return list(written)
