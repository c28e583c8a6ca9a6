"""The `local` publisher: results as `<directory>/<executionID>.tar.gz`, served over HTTP.

`publish` packs the results dir with the native packer (links leaving the dir are refused)
and answers `{"Type": "urlDownload", "Params": {"URL": "http://<address>:<port>/<id>.tar.gz"}}`
(reference §4.3). `start()` runs a small HTTP server on `bind_host:port` that serves the
finished archives in `directory` (port 0 picks a free port, exposed as `.port` once
started). `address` is put in the URL verbatim, as Bacalhau does; it is also where the server
binds unless `bind_host` says otherwise. Archives are written under a temporary name and
renamed, so the server never hands out a partial file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from pathlib import Path

from aiohttp import web

from bacalhau import _native
from bacalhau.content import is_small_tree
from bacalhau.errors import MergeError, PublisherError
from bacalhau.models import Execution, SpecConfig

# what the server hands out: finished archives only (never the ".partial" files)
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.tar\.gz")
class LocalPublisher:
    type = "local"
    # a small tree (content.is_small_tree) is packed on the event loop: `publish` then
    # returns without yielding, so the runner writes no Publishing state nobody could see
    publishes_small_at_once = True

    def __init__(
        self,
        directory: Path,
        address: str = "127.0.0.1",
        port: int = 6001,
        *,
        bind_host: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.address = address
        self.port = port
        self.bind_host = bind_host or address
        self._runner: web.AppRunner | None = None

    @property
    def started(self) -> bool:
        return self._runner is not None

    def is_installed(self) -> bool:
        return True

    def check(self, spec: SpecConfig) -> list[str]:
        return []

    def url_for(self, execution_id: str) -> str:
        return f"http://{self.address}:{self.port}/{execution_id}.tar.gz"

    async def start(self) -> None:
        """Serve `directory` over HTTP; idempotent."""
        if self._runner is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
            sock = socket.create_server((self.bind_host, self.port), family=family)
        except OSError as exc:
            await runner.cleanup()
            raise PublisherError(
                f"local publisher could not listen on {self.bind_host}:{self.port}: "
                f"{exc.strerror or exc}",
                hint="free the port or set Publishers.Types.Local.Port (0 picks a free port)",
            ) from exc
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.directory / name
        if not _ARCHIVE_NAME.fullmatch(name) or not path.is_file():
            raise web.HTTPNotFound(text=f"no published result {name}\n")
        return web.FileResponse(path)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def publish(self, execution: Execution, results_dir: Path) -> SpecConfig:
        if self.port == 0:
            raise PublisherError(
                "local publisher has no port yet: start() it before publishing"
            )
        if not _ARCHIVE_NAME.fullmatch(f"{execution.id}.tar.gz"):
            raise PublisherError(f'cannot publish results of execution id "{execution.id}"')
        if not Path(results_dir).is_dir():
            raise PublisherError(
                f"results of execution {execution.id} are missing: {results_dir} is not a "
                "directory"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        dest = self.directory / f"{execution.id}.tar.gz"
        partial = self.directory / f".{execution.id}.tar.gz.partial"
        try:
            if is_small_tree(Path(results_dir)):
                # a few small files pack faster than a hand-off to a thread and back
                _native.pack_dir(str(results_dir), str(partial))
            else:
                await asyncio.to_thread(_native.pack_dir, str(results_dir), str(partial))
            os.replace(partial, dest)
        except (MergeError, OSError) as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise PublisherError(
                f"could not pack results of execution {execution.id}: {exc}",
                hint="results may not contain links that point outside the results dir",
            ) from exc
        return SpecConfig(type="urlDownload", params={"URL": self.url_for(execution.id)})
