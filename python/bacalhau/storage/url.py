"""The `urlDownload` input source: an HTTP(S) file fetched before the execution starts.

`prepare` streams a GET into a per-input directory and mounts that directory at the target,
so the file appears at `<Target>/<filename>` (reference §4.2). The file name comes from the
response's Content-Disposition, else the basename of the final URL path (after redirects),
else a random UUID; names are reduced to one safe path segment.

Connection errors, truncated bodies and 5xx answers are retried `max_retries` times with
exponential backoff; other 4xx/3xx answers fail at once. Every attempt (and the HEAD of
`size()`) has `timeout` seconds in total (`InputSources.ReadTimeout`). A body shorter than
its Content-Length, or larger than `max_size`, is refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp

from bacalhau.errors import StorageError
from bacalhau.executors.base import PreparedInput
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage.base import describe_input

log = logging.getLogger(__name__)

CHUNK = 1 << 16
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f/\\]")


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; the message says how."""


def filename_from_content_disposition(header: str | None) -> str | None:
    """`filename*` (RFC 5987/6266) or `filename` from a Content-Disposition header."""
    if not header:
        return None
    star = re.search(r"filename\*\s*=\s*([^;]+)", header, re.IGNORECASE)
    if star:
        value = star.group(1).strip().strip('"')
        charset, _, rest = value.partition("''")
        if rest:
            try:
                return unquote(rest, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                pass
    plain = re.search(r'filename\s*=\s*("(?:[^"\\]|\\.)*"|[^;]+)', header, re.IGNORECASE)
    if plain:
        value = plain.group(1).strip()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return value
    return None


def safe_filename(name: str | None) -> str | None:
    """One harmless path segment, or None when nothing usable is left."""
    if not name:
        return None
    name = _UNSAFE_NAME_CHARS.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if name in ("", ".", "..") or len(name.encode()) > 255:
        return None
    return name


class URLDownloadStorage:
    """Downloads `urlDownload` inputs with aiohttp."""

    types = ("urlDownload",)

    def __init__(
        self,
        *,
        timeout: float = 300.0,
        max_retries: int = 3,
        max_size: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.max_size = max_size
        self.backoff = backoff
        self.max_backoff = max_backoff

    def is_installed(self) -> bool:
        return True

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        url = source.param("URL")
        if not isinstance(url, str) or not url:
            return ["urlDownload source needs Params.URL, an http:// or https:// URL"]
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            return [f'urlDownload URL "{url}" must be an http:// or https:// URL with a host']
        return []

    async def size(self, source: SpecConfig) -> int | None:
        if self.check(source):
            return None
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.head(source.param("URL"), allow_redirects=True) as resp,
            ):
                if resp.status >= 400:
                    return None
                return resp.content_length
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def prepare(self, input_source: InputSource, work_dir: Path) -> PreparedInput:
        what = describe_input(input_source)
        problems = self.check(input_source.source)
        if problems:
            raise StorageError(f"{what}: {problems[0]}")
        url: str = input_source.source.param("URL")
        root = Path(work_dir) / f"url-{uuid.uuid4().hex[:12]}"
        root.mkdir(parents=True)
        try:
            await self._download(url, root, what)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return PreparedInput(source=input_source, host_path=root, target=input_source.target)

    async def cleanup(self, prepared: PreparedInput) -> None:
        if prepared.host_path.name.startswith("url-"):
            await asyncio.to_thread(shutil.rmtree, prepared.host_path, True)

    # ---------------------------------------------------------------------------------------

    async def _download(self, url: str, root: Path, what: str) -> Path:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        last_error = ""
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                    log.info("retrying %s in %.2fs: %s", url, delay, last_error)
                    await asyncio.sleep(delay)
                try:
                    return await self._attempt(session, url, root, what)
                except _Retryable as exc:
                    last_error = str(exc)
                except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                    last_error = _describe_client_error(exc, self.timeout)
        raise StorageError(
            f"{what}: could not download {url} after {self.max_retries + 1} attempts: "
            f"{last_error}",
            hint="check that the URL is reachable from the compute node; retries are set by "
            "InputSources.MaxRetryCount and the per-attempt limit by InputSources.ReadTimeout",
        )

    async def _attempt(
        self, session: aiohttp.ClientSession, url: str, root: Path, what: str
    ) -> Path:
        async with session.get(url, allow_redirects=True) as resp:
            if resp.status >= 500:
                raise _Retryable(f"server answered {resp.status} {resp.reason or ''}".strip())
            if resp.status != 200:
                raise StorageError(
                    f"{what}: GET {url} answered {resp.status} {resp.reason or ''}".rstrip()
                    + ("; the file does not exist there" if resp.status == 404 else ""),
                    hint="check the URL in the job's input source",
                )
            # With a Content-Encoding, Content-Length counts the encoded bytes, not ours.
            encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
            expected = None if encoded else resp.content_length
            if self.max_size is not None and expected is not None and expected > self.max_size:
                raise StorageError(
                    f"{what}: {url} is {expected} bytes, more than this node's limit of "
                    f"{self.max_size} bytes for downloaded inputs",
                    hint="use a smaller input or a node that accepts larger downloads",
                )
            name = (
                safe_filename(filename_from_content_disposition(
                    resp.headers.get("Content-Disposition")
                ))
                or safe_filename(unquote(urlsplit(str(resp.url)).path))
                or uuid.uuid4().hex
            )
            for stale in root.iterdir():  # a previous attempt's partial file
                stale.unlink()
            partial = root / ".download.part"
            received = 0
            try:
                with partial.open("wb") as f:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        received += len(chunk)
                        if self.max_size is not None and received > self.max_size:
                            raise StorageError(
                                f"{what}: {url} is larger than this node's limit of "
                                f"{self.max_size} bytes for downloaded inputs",
                                hint="use a smaller input or a node that accepts larger "
                                "downloads",
                            )
                        f.write(chunk)  # 64 KiB to a local file: cheaper than a thread hop
            except aiohttp.ClientPayloadError as exc:
                raise _Retryable(
                    f"the connection closed after {received} of "
                    f"{expected if expected is not None else 'unknown'} bytes ({exc})"
                ) from exc
            if expected is not None and received != expected:
                raise _Retryable(f"received {received} bytes but Content-Length is {expected}")
            dest = root / name
            partial.rename(dest)
            return dest


def _describe_client_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# The name node.py wires up; same class.
URLStorage = URLDownloadStorage
