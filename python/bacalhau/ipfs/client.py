"""A client of a Kubo RPC endpoint (`/api/v0/*`): what the `ipfs` input, the `ipfs` publisher
and `job get` use to talk to an IPFS node, whether the user's own Kubo daemon or our embedded
node (`bacalhau.ipfs.embedded`, which serves the same endpoints).

Why a thin aiohttp client and not aioipfs: aioipfs 0.7.1 (the latest release) breaks with
aiohttp >= 3.12, and its maintained fork (byteforge-aioipfs) pins `gitignore-parser==0.1.9` and
pulls setuptools, multiaddr and aiofiles for the five documented endpoints we call. These are
plain HTTP POSTs (Kubo RPC reference: https://docs.ipfs.tech/reference/kubo/rpc/), so we own
the requests, their timeouts and the multipart layout.

`add_dir` sends a directory as Kubo's multipart form (one `file` part per entry, the path
URL-escaped in `filename`, `application/x-directory` for folders, `application/symlink` for
links) with the import settings of `bacalhau.content.results_cid`: CIDv0, 256 KiB chunks,
dag-pb leaves, dotfiles included — so the CID Kubo answers equals `bacalhau cid` of the dir.
Every request has a deadline; a CID nobody provides fails with `IpfsTimeout` instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp

from bacalhau.errors import BacalhauError

DEFAULT_TIMEOUT = 300.0

# The import settings of `bacalhau.content.RESULTS_PROFILE` ("unixfs-v0-2015") as Kubo's
# `add` options; sent explicitly so a node whose config changes its defaults (Import.*) still
# answers the CID that `job get` verifies.
ADD_OPTIONS: dict[str, str] = {
    "cid-version": "0",
    "raw-leaves": "false",
    "chunker": "size-262144",
    "hash": "sha2-256",
    "pin": "true",
    "quieter": "true",
}

_CID = re.compile(r"^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,})$")


class IpfsError(BacalhauError):
    """A Kubo RPC request failed; the message names the endpoint and what to do."""

    component = "IPFS"


class IpfsTimeout(IpfsError):
    """A Kubo RPC request ran past its deadline (typically: no connected peer has the CID)."""


def is_cid(text: str) -> bool:
    """True for something shaped like a CIDv0 (`Qm...`) or base32 CIDv1 (`bafy...`)."""
    return bool(_CID.match(text or ""))


def endpoint_url(endpoint: str) -> str:
    """`http://host:port` from a Kubo API multiaddr (`/ip4/127.0.0.1/tcp/5001`,
    `/dns4/host/tcp/5001`, `/ip6/::1/tcp/5001`) or an `http(s)://` URL."""
    text = (endpoint or "").strip()
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    parts = [p for p in text.split("/") if p]
    if len(parts) >= 4 and parts[0] in ("ip4", "ip6", "dns", "dns4", "dns6") and \
            parts[2] == "tcp" and parts[3].isdigit():
        host = f"[{parts[1]}]" if parts[0] == "ip6" else parts[1]
        scheme = "https" if "https" in parts[4:] or "tls" in parts[4:] else "http"
        return f"{scheme}://{host}:{parts[3]}"
    raise IpfsError(
        f'invalid IPFS endpoint "{endpoint}"',
        hint="give the Kubo RPC address as a multiaddr (/ip4/127.0.0.1/tcp/5001) or a URL "
        "(http://127.0.0.1:5001)",
    )


def _entries(root: Path) -> list[tuple[str, Path, str]]:
    """(name relative to root's parent, path, kind) for root and everything below it, parents
    before children, names in byte order; kind is "dir", "file" or "symlink". Dotfiles count
    (results_cid hashes them)."""
    out: list[tuple[str, Path, str]] = [(root.name, root, "dir")]
    pending = [(root.name, root)]
    while pending:
        prefix, folder = pending.pop(0)
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda e: os.fsencode(e.name))
        for entry in children:
            name = f"{prefix}/{entry.name}"
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                out.append((name, Path(entry.path), "symlink"))
            elif stat.S_ISDIR(mode):
                out.append((name, Path(entry.path), "dir"))
                pending.append((name, Path(entry.path)))
            elif stat.S_ISREG(mode):
                out.append((name, Path(entry.path), "file"))
            else:
                raise IpfsError(f"cannot add {entry.path}: not a file, folder or link",
                                hint="remove sockets, fifos and devices from the directory")
    return out


def multipart_for(root: Path) -> aiohttp.MultipartWriter:
    """Kubo's `add` body for the directory `root`: one `file` part per entry."""
    writer = aiohttp.MultipartWriter("form-data")
    for name, path, kind in _entries(root):
        if kind == "dir":
            payload: Any = aiohttp.payload.BytesPayload(
                b"", content_type="application/x-directory")
        elif kind == "symlink":
            payload = aiohttp.payload.BytesPayload(
                os.fsencode(os.readlink(path)), content_type="application/symlink")
        else:  # opened when the writer gets there: one file handle at a time
            payload = aiohttp.payload.AsyncIterablePayload(
                _file_chunks(path), content_type="application/octet-stream")
        # aiohttp would quote the name itself; Kubo reads it URL-unescaped (QueryEscape form)
        payload.headers["Content-Disposition"] = (
            f'form-data; name="file"; filename="{quote_plus(name, safe="")}"')
        writer.append_payload(payload)
    return writer


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, 1 << 20):
            yield chunk


class IpfsClient:
    """Async client of one Kubo RPC endpoint. Use as `async with IpfsClient(...) as c:` or
    call `close()`; each request opens on the shared session and has its own deadline."""

    def __init__(self, endpoint: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = endpoint
        self.base_url = endpoint_url(endpoint)
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> IpfsClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _post(self, command: str, params: dict[str, str] | list[tuple[str, str]],
                    timeout: float | None, *, data: Any = None, what: str = "") -> Any:
        """POST /api/v0/<command>; returns the open response (caller reads and releases it)."""
        limit = self.timeout if timeout is None else timeout
        query = list(params.items()) if isinstance(params, dict) else list(params)
        # Kubo's own per-command deadline, so the node stops looking too, not only we waiting
        query.append(("timeout", f"{max(1, int(limit))}s"))
        url = f"{self.base_url}/api/v0/{command}"
        try:
            response = await self._http().post(
                url, params=query, data=data,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(limit, 30)))
        except aiohttp.ClientConnectorError as exc:
            raise IpfsError(
                f"cannot reach the IPFS node at {self.base_url} ({exc.strerror or exc})",
                hint="start the Kubo daemon (ipfs daemon) or fix the configured Endpoint, "
                "or enable the embedded node (IPFS.Embedded.Enabled)") from exc
        if response.status >= 400:
            body = await response.text()
            response.release()
            try:
                message = json.loads(body).get("Message", body)
            except (ValueError, AttributeError):
                message = body
            if "context deadline exceeded" in message:
                raise IpfsTimeout(f"IPFS {command} {what} timed out after {limit:.0f}s: {message}",
                                  hint=_TIMEOUT_HINT)
            raise IpfsError(f"IPFS {command} {what} failed at {self.base_url}: "
                            f"{message.strip()} (HTTP {response.status})")
        return response

    async def _json(self, command: str, params: dict[str, str] | list[tuple[str, str]],
                    timeout: float | None = None, what: str = "") -> Any:
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                response = await self._post(command, params, limit, what=what)
                async with response:
                    return json.loads(await response.read() or b"{}")
        except TimeoutError as exc:
            raise IpfsTimeout(f"IPFS {command} {what} timed out after {limit:.0f}s",
                              hint=_TIMEOUT_HINT) from exc

    async def id(self, timeout: float | None = None) -> dict[str, Any]:
        """The node's identity: `{"ID": peer id, "Addresses": [multiaddr/p2p/id...], ...}`."""
        answer: dict[str, Any] = await self._json("id", {}, timeout)
        return answer

    async def swarm_connect(self, address: str, timeout: float | None = None) -> None:
        """Connect the node to a peer (`<multiaddr>/p2p/<peer id>`)."""
        await self._json("swarm/connect", {"arg": address}, timeout, what=address)

    async def add_dir(self, root: str | os.PathLike[str], timeout: float | None = None) -> str:
        """Add the directory `root` (recursively, dotfiles included, pinned); returns the CID
        of the directory node, as `bacalhau cid --hidden` computes it."""
        root = Path(root)
        if not root.is_dir():
            raise IpfsError(f"cannot add {root}: not a directory")
        limit = self.timeout if timeout is None else timeout
        writer = await asyncio.to_thread(multipart_for, root)
        last: dict[str, Any] = {}
        try:
            async with asyncio.timeout(limit):
                response = await self._post("add", ADD_OPTIONS, limit, data=writer,
                                            what=str(root))
                async with response:
                    # one JSON object per line; the directory itself comes last
                    async for line in response.content:
                        if line.strip():
                            last = json.loads(line)
        except TimeoutError as exc:
            raise IpfsTimeout(f"IPFS add of {root} timed out after {limit:.0f}s",
                              hint="the node is slow or stuck; raise the timeout or check "
                              "the node") from exc
        if "Hash" not in last:
            raise IpfsError(f"IPFS add of {root}: the node answered no CID ({last or 'nothing'})")
        return str(last["Hash"])

    async def cat(self, cid: str, timeout: float | None = None) -> bytes:
        """The bytes of the file `cid`."""
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                response = await self._post("cat", {"arg": cid}, limit, what=cid)
                async with response:
                    data: bytes = await response.read()
                    return data
        except TimeoutError as exc:
            raise IpfsTimeout(f"IPFS cat {cid} timed out after {limit:.0f}s",
                              hint=_TIMEOUT_HINT) from exc

    async def get(self, cid: str, dest: str | os.PathLike[str],
                  timeout: float | None = None) -> Path:
        """Fetch `cid` (a directory or a file) to `dest`, which must not exist yet: a
        directory's entries land in `dest/`, a file becomes `dest`. Nothing is left at `dest`
        on failure."""
        dest = Path(dest)
        if dest.exists() or dest.is_symlink():
            raise IpfsError(f"cannot fetch {cid} into {dest}: it already exists")
        limit = self.timeout if timeout is None else timeout
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".ipfs-get-", suffix=".tar", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                try:
                    async with asyncio.timeout(limit):
                        response = await self._post("get", {"arg": cid}, limit, what=cid)
                        async with response:
                            async for chunk in response.content.iter_chunked(1 << 16):
                                sink.write(chunk)
                except TimeoutError as exc:
                    raise IpfsTimeout(f"IPFS get {cid} timed out after {limit:.0f}s",
                                      hint=_TIMEOUT_HINT) from exc
            await asyncio.to_thread(_extract, tmp, cid, dest)
        except BaseException:
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest, ignore_errors=True)
            else:
                dest.unlink(missing_ok=True)
            raise
        finally:
            tmp.unlink(missing_ok=True)
        return dest


_TIMEOUT_HINT = ("no connected IPFS peer provided the CID in time: check the CID, connect the "
                 "node holding it (IPFS.Embedded.Peers or `ipfs swarm connect`), or raise the "
                 "timeout")


def _extract(archive: Path, cid: str, dest: Path) -> None:
    """Unpack Kubo's `get` tar (entries named `<cid>` and `<cid>/...`) to `dest`, refusing
    entries outside it (tarfile's "data" filter: no absolute paths, `..`, devices)."""
    try:
        with tarfile.open(archive, "r:") as tar:
            members = tar.getmembers()
            top = {m.name.split("/", 1)[0] for m in members}
            if len(top) != 1:
                raise IpfsError(f"IPFS get {cid}: unexpected archive layout ({sorted(top)[:3]})")
            prefix = top.pop()
            for member in members:
                rest = member.name[len(prefix):].lstrip("/")
                member.name = os.path.join(dest.name, rest) if rest else dest.name
            tar.extractall(dest.parent, members=members, filter="data")
    except tarfile.TarError as exc:
        raise IpfsError(f"IPFS get {cid}: the node sent a broken archive: {exc}") from exc
