"""The `inline` input source: content carried in the job as an RFC 2397 `data:` URL.

`data:[<mediatype>][;base64],<data>` — base64 or percent-encoded. With media type
`application/gzip` the payload is a gzip'd tar that is unpacked (safely, by the native
unpacker: no `..`, absolute names, escaping links or devices) into a directory mounted at the
target; anything else becomes one file named after the target's basename — written straight
into the work dir, which is made for it (the runner names a fresh one for every input, and
makes none itself), or into an `inline-<id>` folder when the work dir already holds
something. The CLI uses this for small local files, e.g. `bacalhau wasm run ./main.wasm`.

`read_bytes` gives the content of a one-file input without writing anything: the runner uses
it for inputs an executor reads as bytes (the wasm engine's modules, issue 15).

With a `cache_dir`, a one-file input whose content was written before is not written again:
the file is a hard link to the copy kept (by sha256) in `cache_dir`, which costs far less than
creating a file (jobs resubmitted with the same inline WASM module are the common case).
A content is kept from its second sighting on: one seen once (each job's own small input)
costs no cache entry (issue 15: files created per execution). Files under `CACHE_MIN_FILE`
are always written: a link is a file creation too, and saves nothing on a small write.
Inline inputs are always mounted read-only, so no run can change what the others see. The
cache keeps at most `CACHE_FILES` files of `CACHE_BYTES` in all (least recently used leave
first) and is emptied when the storage starts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import shutil
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote_to_bytes

from bacalhau import _native
from bacalhau.errors import MergeError, StorageError
from bacalhau.executors.base import PreparedInput
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage.base import describe_input

GZIP_TYPES = ("application/gzip", "application/x-gzip")
# A job's URLs are decoded at bid time (check, size) and again to write them: small ones are
# kept, decoded, for those repeats.
_CACHE_MAX_URL = 64 * 1024
_CACHE_ENTRIES = 32
_decoded: OrderedDict[str, DataURL] = OrderedDict()
# Files up to this size are written on the event loop: cheaper than handing them to a thread.
SMALL_WRITE = 64 * 1024
# The link cache (see the module doc): files and bytes kept, and the largest file kept.
CACHE_FILES = 64
CACHE_BYTES = 64 * 1024 * 1024
CACHE_MAX_FILE = 16 * 1024 * 1024
CACHE_MIN_FILE = SMALL_WRITE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataURL:
    media_type: str  # lower-cased, without parameters; "" when absent
    data: bytes


def parse_data_url(url: str) -> DataURL:
    """Decode an RFC 2397 `data:` URL; raises ValueError saying what is wrong."""
    if len(url) > _CACHE_MAX_URL:
        return _parse_data_url(url)
    parsed = _decoded.get(url)
    if parsed is None:
        parsed = _decoded[url] = _parse_data_url(url)
        if len(_decoded) > _CACHE_ENTRIES:
            _decoded.popitem(last=False)
    return parsed


def _parse_data_url(url: str) -> DataURL:
    if url[:5].lower() != "data:":
        raise ValueError('URL must start with "data:"')
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise ValueError('data URL has no "," between the media type and the data')
    parts = [p.strip() for p in header.split(";")]
    is_base64 = len(parts) > 1 and parts[-1].lower() == "base64"
    media_type = parts[0].lower() if parts[0] and "=" not in parts[0] else ""
    if is_base64:
        text = unquote_to_bytes(payload).translate(None, b" \t\r\n")
        try:
            data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"invalid base64 data: {exc}") from exc
    else:
        data = unquote_to_bytes(payload)
    return DataURL(media_type=media_type, data=data)


class InlineStorage:
    """Writes `data:` URL inputs into the execution's work dir."""

    types = ("inline",)
    BID_CHECKS_ARE_LOCAL = True  # the size is the data URL's (compute/bidder.py)

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._direct: set[Path] = set()  # files written straight into a work dir
        self._cache = _LinkCache(Path(cache_dir)) if cache_dir is not None else None

    def is_installed(self) -> bool:
        return True

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        url = source.param("URL")
        if not isinstance(url, str) or not url:
            return ['inline source needs Params.URL, a "data:" URL (RFC 2397)']
        try:
            parse_data_url(url)
        except ValueError as exc:
            return [f"inline source URL is invalid: {exc}"]
        return []

    async def size(self, source: SpecConfig) -> int | None:
        url = source.param("URL")
        if not isinstance(url, str):
            return None
        try:
            return len(parse_data_url(url).data)
        except ValueError:
            return None

    def read_bytes(self, input_source: InputSource) -> bytes | None:
        """The content of a one-file input (not a gzip'd tar), decoded; None when the input is
        a directory or its URL is invalid (`prepare` then says what is wrong)."""
        url = input_source.source.param("URL")
        if not isinstance(url, str) or not url:
            return None
        try:
            parsed = parse_data_url(url)
        except ValueError:
            return None
        return None if parsed.media_type in GZIP_TYPES else parsed.data

    async def prepare(self, input_source: InputSource, work_dir: Path) -> PreparedInput:
        what = describe_input(input_source)
        url = input_source.source.param("URL")
        if not isinstance(url, str) or not url:
            raise StorageError(
                f'{what}: inline source needs Params.URL, a "data:" URL',
                hint="embed the content as data:[<mediatype>][;base64],<data>",
            )
        try:
            parsed = parse_data_url(url)
        except ValueError as exc:
            raise StorageError(
                f"{what}: inline source URL is invalid: {exc}",
                hint="embed the content as data:[<mediatype>][;base64],<data>",
            ) from exc
        work = Path(work_dir)
        if parsed.media_type not in GZIP_TYPES and _fresh_dir(work):
            host_path = work / (PurePosixPath(input_source.target).name or "input")
            try:
                if self._cache is not None and self._cache.link(parsed.data, host_path):
                    pass  # the same content was written before: a hard link to it
                elif len(parsed.data) <= SMALL_WRITE:
                    _create_file(host_path, parsed.data)  # cheaper than a thread hop
                else:
                    await asyncio.to_thread(_create_file, host_path, parsed.data)
            except FileExistsError:
                pass  # someone else writes into this dir: use a folder of our own
            except BaseException:
                host_path.unlink(missing_ok=True)
                raise
            else:
                if self._cache is not None:
                    self._cache.remember(parsed.data, host_path)
                self._direct.add(host_path)
                return PreparedInput(
                    source=input_source, host_path=host_path, target=input_source.target)
        root = work / f"inline-{uuid.uuid4().hex[:12]}"
        try:
            if parsed.media_type in GZIP_TYPES:
                host_path = await asyncio.to_thread(_unpack_bytes, parsed.data, root, what)
            else:
                name = PurePosixPath(input_source.target).name or "input"
                host_path = root / name
                await asyncio.to_thread(_write_file, root, host_path, parsed.data)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return PreparedInput(
            source=input_source, host_path=host_path, target=input_source.target
        )

    async def cleanup(self, prepared: PreparedInput) -> None:
        if prepared.host_path in self._direct:
            self._direct.discard(prepared.host_path)
            prepared.host_path.unlink(missing_ok=True)  # one unlink: no thread hop
            return
        # both other shapes live one level under the per-input root: root/<name> or root/content
        root = prepared.host_path.parent
        if root.name.startswith("inline-"):
            await asyncio.to_thread(shutil.rmtree, root, True)


class _LinkCache:
    """Files by the sha256 of their content, in `root`, to hard-link from (see module doc)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._entries: OrderedDict[str, int] = OrderedDict()  # digest -> size, LRU order
        self._bytes = 0
        self._ready = False
        self._digests: dict[int, tuple[bytes, str]] = {}  # id(data) -> (data, digest)
        self._seen: OrderedDict[str, None] = OrderedDict()  # seen once, not kept (yet)

    def _digest(self, data: bytes) -> str:
        # the parse cache keeps the decoded bytes of a small URL, so the same object comes
        # back for a repeated one: hash it once (holding no bytes the parse cache would not)
        if len(data) > _CACHE_MAX_URL:
            return hashlib.sha256(data).hexdigest()
        known = self._digests.get(id(data))
        if known is not None and known[0] is data:
            return known[1]
        digest = hashlib.sha256(data).hexdigest()
        if len(self._digests) >= 2 * _CACHE_ENTRIES:
            self._digests.clear()
        self._digests[id(data)] = (data, digest)
        return digest

    def link(self, data: bytes, dest: Path) -> bool:
        """Make `dest` a hard link to a kept file with content `data`; False if none is kept
        (or the link cannot be made), and the caller writes the file."""
        if not self._entries or not CACHE_MIN_FILE <= len(data) <= CACHE_MAX_FILE:
            return False
        digest = self._digest(data)
        if digest not in self._entries:
            return False
        try:
            os.link(self._root / digest, dest)
        except FileExistsError:
            raise
        except OSError:  # removed behind our back, or another file system: write instead
            self._drop(digest)
            self._seen[digest] = None  # a repeated content: keep the next write again
            return False
        self._entries.move_to_end(digest)
        return True

    def remember(self, data: bytes, written: Path) -> None:
        """Keep the just written file `written` (content `data`) for later links."""
        size = len(data)
        if not CACHE_MIN_FILE <= size <= CACHE_MAX_FILE:
            return
        digest = self._digest(data)
        if digest in self._entries:
            return
        try:
            if not self._ready:
                shutil.rmtree(self._root, ignore_errors=True)  # left by an earlier run
                self._root.mkdir(parents=True, exist_ok=True)
                self._ready = True
            if digest not in self._seen:  # the first sighting: remember only the digest
                self._seen[digest] = None
                while len(self._seen) > 4 * CACHE_FILES:
                    self._seen.popitem(last=False)
                return
            del self._seen[digest]
            os.link(written, self._root / digest)
        except OSError as exc:
            log.debug("inline link cache: cannot keep %s: %s", written, exc)
            return
        self._entries[digest] = size
        self._bytes += size
        while self._entries and (len(self._entries) > CACHE_FILES
                                 or self._bytes > CACHE_BYTES):
            self._drop(next(iter(self._entries)))

    def _drop(self, digest: str) -> None:
        size = self._entries.pop(digest, None)
        if size is None:
            return
        self._bytes -= size
        with contextlib.suppress(OSError):
            (self._root / digest).unlink()


def _fresh_dir(path: Path) -> bool:
    """Make `path` (and its parents); True if it is now an empty directory."""
    try:
        path.mkdir(parents=True)
        return True
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _create_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)


def _write_file(root: Path, path: Path, data: bytes) -> None:
    root.mkdir(parents=True)
    path.write_bytes(data)


def _unpack_bytes(data: bytes, root: Path, what: str) -> Path:
    root.mkdir(parents=True)
    archive = root / "payload.tar.gz"
    dest = root / "content"
    archive.write_bytes(data)
    try:
        _native.unpack(str(archive), str(dest))
    except (MergeError, OSError) as exc:
        raise StorageError(
            f"{what}: inline application/gzip data is not a safe tar.gz archive: {exc}",
            hint="send a gzip'd tar without absolute paths, '..' or links leaving the archive",
        ) from exc
    finally:
        archive.unlink(missing_ok=True)
    return dest
