"""`urlDownload` inputs against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bacalhau.errors import StorageError
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage import StorageProvider, URLDownloadStorage
from bacalhau.storage.url import URLStorage, filename_from_content_disposition, safe_filename

pytestmark = pytest.mark.unit

BODY = b"line one\nline two\n" * 1000


def url_input(url: str, target: str = "/inputs") -> InputSource:
    return InputSource(SpecConfig("urlDownload", {"URL": url}), alias=url, target=target)


class Server:
    """A small HTTP server with one route per behaviour under test."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.base = ""
        self.raw_base = ""

    def count(self, name: str) -> int:
        self.hits[name] = self.hits.get(name, 0) + 1
        return self.hits[name]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/data/words.txt", self.file)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/disposition", self.disposition)
        app.router.add_get("/flaky/file.bin", self.flaky)
        app.router.add_get("/broken", self.broken)
        app.router.add_get("/missing.txt", self.missing)
        app.router.add_get("/dir/", self.file)
        return app

    async def file(self, request: web.Request) -> web.Response:
        self.count("file")
        return web.Response(body=BODY)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/data/words.txt")

    async def disposition(self, request: web.Request) -> web.Response:
        headers = {"Content-Disposition": 'attachment; filename="report final.csv"'}
        return web.Response(body=b"a,b\n1,2\n", headers=headers)

    async def flaky(self, request: web.Request) -> web.Response:
        if self.count("flaky") == 1:
            return web.Response(status=500, text="try again")
        return web.Response(body=BODY)

    async def broken(self, request: web.Request) -> web.Response:
        self.count("broken")
        return web.Response(status=503, text="down")

    async def missing(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound()


async def short_body_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Promises 100 bytes, sends 50, hangs up."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" + b"x" * 50)
    await writer.drain()
    writer.close()


@pytest.fixture()
async def server() -> AsyncIterator[Server]:
    srv = Server()
    runner = web.AppRunner(srv.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv.base = f"http://127.0.0.1:{port}"
    raw = await asyncio.start_server(short_body_server, "127.0.0.1", 0)
    srv.raw_base = f"http://127.0.0.1:{raw.sockets[0].getsockname()[1]}"
    try:
        yield srv
    finally:
        raw.close()
        await raw.wait_closed()
        await runner.cleanup()


def storage(**kwargs: object) -> URLDownloadStorage:
    options: dict = {"timeout": 10.0, "max_retries": 3, "backoff": 0.01}
    options.update(kwargs)
    return URLDownloadStorage(**options)


def test_is_a_storage_provider() -> None:
    assert URLStorage is URLDownloadStorage
    assert isinstance(URLStorage(timeout=5, max_retries=1), StorageProvider)
    assert URLDownloadStorage.types == ("urlDownload",)


def test_check() -> None:
    s = URLDownloadStorage()
    assert s.check(SpecConfig("urlDownload", {"URL": "https://example.com/x"})) == []
    assert "needs Params.URL" in s.check(SpecConfig("urlDownload", {}))[0]
    assert "http:// or https://" in s.check(SpecConfig("urlDownload", {"url": "ftp://h/x"}))[0]
    assert "http:// or https://" in s.check(SpecConfig("urlDownload", {"URL": "http:///x"}))[0]


async def test_download_mounts_a_dir_holding_the_file(server: Server, tmp_path: Path) -> None:
    s = storage()
    prepared = await s.prepare(url_input(f"{server.base}/data/words.txt"), tmp_path)
    assert prepared.host_path.is_dir()
    assert prepared.target == "/inputs"
    assert [p.name for p in prepared.host_path.iterdir()] == ["words.txt"]
    assert (prepared.host_path / "words.txt").read_bytes() == BODY
    await s.cleanup(prepared)
    assert list(tmp_path.iterdir()) == []


async def test_size_uses_head(server: Server) -> None:
    s = storage()
    found = SpecConfig("urlDownload", {"URL": f"{server.base}/data/words.txt"})
    missing = SpecConfig("urlDownload", {"URL": f"{server.base}/missing.txt"})
    assert await s.size(found) == len(BODY)
    assert await s.size(missing) is None


async def test_redirect_names_the_file_after_the_final_url(
    server: Server, tmp_path: Path
) -> None:
    prepared = await storage().prepare(url_input(f"{server.base}/redirect"), tmp_path)
    assert (prepared.host_path / "words.txt").read_bytes() == BODY


async def test_content_disposition_names_the_file(server: Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{server.base}/disposition"), tmp_path)
    assert (prepared.host_path / "report final.csv").read_bytes() == b"a,b\n1,2\n"


async def test_no_usable_name_gives_a_uuid(server: Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{server.base}/dir/"), tmp_path)
    (only,) = prepared.host_path.iterdir()
    assert len(only.name) == 32 and only.read_bytes() == BODY


async def test_server_error_is_retried(server: Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{server.base}/flaky/file.bin"), tmp_path)
    assert (prepared.host_path / "file.bin").read_bytes() == BODY
    assert server.hits["flaky"] == 2


async def test_retries_run_out(server: Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"after 3 attempts: server answered 503"):
        await storage(max_retries=2).prepare(url_input(f"{server.base}/broken"), tmp_path)
    assert server.hits["broken"] == 3
    assert list(tmp_path.iterdir()) == []


async def test_not_found_fails_at_once_with_a_clear_error(
    server: Server, tmp_path: Path
) -> None:
    url = f"{server.base}/missing.txt"
    with pytest.raises(StorageError) as info:
        await storage().prepare(url_input(url), tmp_path)
    message = str(info.value)
    assert f'input "{url}" (target /inputs)' in message
    assert "404" in message and "does not exist" in message
    assert list(tmp_path.iterdir()) == []


async def test_short_body_is_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="closed after 50 of 100 bytes"):
        await storage(max_retries=1).prepare(url_input(f"{server.raw_base}/x.bin"), tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_max_size(server: Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="limit of 100 bytes"):
        await storage(max_size=100).prepare(url_input(f"{server.base}/data/words.txt"), tmp_path)
    assert server.hits["file"] == 1  # not retried


async def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    # a port that was just free: nothing listens there
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with pytest.raises(StorageError, match="after 2 attempts"):
        await storage(max_retries=1).prepare(url_input(f"http://127.0.0.1:{port}/x"), tmp_path)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="a b.txt"', "a b.txt"),
        ("attachment; filename=plain.bin", "plain.bin"),
        ("attachment; filename*=UTF-8''caf%C3%A9.txt; filename=\"cafe.txt\"", "café.txt"),
        ("inline", None),
        (None, None),
    ],
)
def test_content_disposition_parsing(header: str | None, name: str | None) -> None:
    assert filename_from_content_disposition(header) == name


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("../../etc/passwd", "passwd"), ("..", None), ("", None), ("a\nb", "a_b"), ("/", None)],
)
def test_safe_filename(raw: str, safe: str | None) -> None:
    assert safe_filename(raw) == safe
