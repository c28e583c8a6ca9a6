"""The Kubo RPC client (`bacalhau.ipfs.client`), the `ipfs` input source and publisher.

No Kubo RPC daemon can run here, so these tests check the exact requests the client sends
against a local aiohttp server standing in for Kubo (marked "stand-in" below): the endpoint
paths, the `add` options that make Kubo's CID equal `bacalhau cid`, the multipart layout of
Kubo's `add` (parents first, URL-escaped names, directory and symlink content types), the
`get` tar handling, Kubo's error bodies and the deadlines. The same client runs against real
Kubo code (the embedded node) in tests/integration/test_ipfs.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aiohttp import BodyPartReader, web

from bacalhau.content import results_cid
from bacalhau.errors import PublisherError, StorageError
from bacalhau.ipfs.client import ADD_OPTIONS, IpfsClient, IpfsError, IpfsTimeout, endpoint_url
from bacalhau.models import Execution, InputSource, SpecConfig
from bacalhau.publishers.ipfs import IPFSPublisher
from bacalhau.storage.ipfs import IPFSStorage
from tests.conftest import free_port

pytestmark = [pytest.mark.unit]

CID = "QmWhfZpyPxoAfpu4JgTDX6qdjMoLryCZWBPoRvaDSUNsFv"


class StandInKubo:
    """A stand-in for a Kubo RPC endpoint (no real Kubo daemon can run here): records every
    request; answers are set per test."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.add_hash = CID
        self.tar: bytes = b""
        self.error: tuple[int, dict[str, Any]] | None = None
        self.stall = False
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        record: dict[str, Any] = {"method": request.method, "path": request.path,
                                  "query": list(request.query.items()), "parts": []}
        self.requests.append(record)
        if request.path == "/api/v0/add":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                record["parts"].append({
                    "disposition": part.headers["Content-Disposition"],
                    "type": part.headers["Content-Type"],
                    "body": await part.read()})
        if self.stall:
            await asyncio.sleep(3600)  # a node looking for a CID nobody has
        if self.error is not None:
            return web.json_response(self.error[1], status=self.error[0])
        if request.path == "/api/v0/add":
            lines = [{"Name": "results/x", "Hash": "QmChild", "Size": "1"},
                     {"Name": "results", "Hash": self.add_hash, "Size": "9"}]
            return web.Response(text="".join(json.dumps(line) + "\n" for line in lines))
        if request.path == "/api/v0/get":
            return web.Response(body=self.tar, content_type="application/x-tar")
        if request.path == "/api/v0/cat":
            return web.Response(body=b"file bytes")
        if request.path == "/api/v0/id":
            return web.json_response({"ID": "QmPeer", "Addresses": ["/ip4/127.0.0.1/tcp/4001"]})
        if request.path == "/api/v0/swarm/connect":
            return web.json_response({"Strings": ["connect QmPeer success"]})
        return web.Response(status=404)


@pytest.fixture
async def kubo() -> AsyncIterator[StandInKubo]:
    stand_in = StandInKubo()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stand_in.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stand_in.url = f"http://127.0.0.1:{port}"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


def tar_of(entries: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    """A tar like Kubo's `get`: names as given, None = directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def results_tree(root: Path) -> Path:
    (root / "sub dir").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / ".hidden").write_text("dot")
    (root / "a.txt").write_text("hello world\n")
    (root / "sub dir" / "ü+b.bin").write_bytes(b"\x00\x01")
    os.symlink("a.txt", root / "link")
    return root


@pytest.mark.parametrize(("endpoint", "url"), [
    ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
    ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
    ("/dns4/ipfs.example/tcp/443/https", "https://ipfs.example:443"),
    ("http://127.0.0.1:5001/", "http://127.0.0.1:5001"),
])
def test_endpoint_forms(endpoint: str, url: str) -> None:
    assert endpoint_url(endpoint) == url


def test_bad_endpoint_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(IpfsError) as err:
        endpoint_url("localhost:5001")
    assert "/ip4/127.0.0.1/tcp/5001" in err.value.hint


async def test_add_sends_kubo_multipart_with_the_cid_settings(kubo: StandInKubo,
                                                              tmp_path: Path) -> None:
    root = results_tree(tmp_path / "results")
    async with IpfsClient(kubo.url) as client:
        cid = await client.add_dir(root)
    assert cid == CID  # the directory's line (the last), not a child's
    (request,) = kubo.requests
    assert request["method"] == "POST" and request["path"] == "/api/v0/add"
    query = dict(request["query"])
    for option, value in ADD_OPTIONS.items():
        assert query[option] == value
    assert query["cid-version"] == "0" and query["raw-leaves"] == "false"
    assert query["timeout"].endswith("s")
    names = []
    for part in request["parts"]:
        disposition = part["disposition"]
        assert disposition.startswith('form-data; name="file"; filename="')
        escaped = disposition.split('filename="', 1)[1].rstrip('"')
        assert "/" not in escaped and " " not in escaped  # QueryEscape form, as Kubo reads it
        names.append((unquote_plus(escaped), part["type"], part["body"]))
    assert [n for n, _t, _b in names] == [
        "results", "results/.hidden", "results/a.txt", "results/empty", "results/link",
        "results/sub dir", "results/sub dir/ü+b.bin"]
    kinds = {n: (t, b) for n, t, b in names}
    assert kinds["results"][0] == "application/x-directory"
    assert kinds["results/empty"][0] == "application/x-directory"
    assert kinds["results/link"] == ("application/symlink", b"a.txt")
    assert kinds["results/a.txt"] == ("application/octet-stream", b"hello world\n")
    assert kinds["results/.hidden"][1] == b"dot"  # dotfiles are part of results_cid


async def test_get_extracts_kubo_tar_and_refuses_escapes(kubo: StandInKubo,
                                                         tmp_path: Path) -> None:
    kubo.tar = tar_of({CID: None, f"{CID}/a.txt": b"A", f"{CID}/sub": None,
                       f"{CID}/sub/b": b"B"}, links={f"{CID}/l": "a.txt"})
    async with IpfsClient(kubo.url) as client:
        dest = await client.get(CID, tmp_path / "got")
        assert (dest / "a.txt").read_bytes() == b"A"
        assert (dest / "sub" / "b").read_bytes() == b"B"
        assert os.readlink(dest / "l") == "a.txt"
        assert kubo.requests[-1]["path"] == "/api/v0/get"
        assert ("arg", CID) in kubo.requests[-1]["query"]

        kubo.tar = tar_of({CID: None}, links={f"{CID}/evil": "/etc/passwd"})
        with pytest.raises((IpfsError, tarfile.TarError)):
            await client.get(CID, tmp_path / "evil")
        assert not (tmp_path / "evil").exists()
        assert not list(tmp_path.glob(".ipfs-get-*"))

        with pytest.raises(IpfsError, match="already exists"):
            await client.get(CID, dest)


async def test_get_of_a_file_cid_writes_the_file(kubo: StandInKubo, tmp_path: Path) -> None:
    kubo.tar = tar_of({CID: b"just a file"})
    async with IpfsClient(kubo.url) as client:
        dest = await client.get(CID, tmp_path / "f")
    assert dest.read_bytes() == b"just a file"


async def test_id_connect_and_cat_requests(kubo: StandInKubo) -> None:
    async with IpfsClient(kubo.url) as client:
        assert (await client.id())["ID"] == "QmPeer"
        await client.swarm_connect("/ip4/127.0.0.1/tcp/4001/p2p/QmPeer")
        assert await client.cat(CID) == b"file bytes"
    paths = [(r["path"], dict(r["query"]).get("arg")) for r in kubo.requests]
    assert paths == [("/api/v0/id", None),
                     ("/api/v0/swarm/connect", "/ip4/127.0.0.1/tcp/4001/p2p/QmPeer"),
                     ("/api/v0/cat", CID)]
    assert all(r["method"] == "POST" for r in kubo.requests)  # Kubo refuses GET on the RPC


async def test_kubo_errors_become_clear_errors(kubo: StandInKubo, tmp_path: Path) -> None:
    kubo.error = (500, {"Message": "invalid path \"nope\": invalid cid", "Code": 0,
                        "Type": "error"})
    async with IpfsClient(kubo.url) as client:
        with pytest.raises(IpfsError, match="invalid cid") as err:
            await client.get("nope", tmp_path / "x")
        assert not isinstance(err.value, IpfsTimeout)
        kubo.error = (500, {"Message": "context deadline exceeded", "Code": 0, "Type": "error"})
        with pytest.raises(IpfsTimeout):
            await client.cat(CID)
    assert not (tmp_path / "x").exists()


async def test_a_stalled_node_times_out_instead_of_hanging(kubo: StandInKubo,
                                                           tmp_path: Path) -> None:
    kubo.stall = True
    async with IpfsClient(kubo.url) as client:
        with pytest.raises(IpfsTimeout, match=CID) as err:
            await client.get(CID, tmp_path / "x", timeout=0.5)
    assert "connect the node holding it" in err.value.hint
    assert not (tmp_path / "x").exists()


async def test_unreachable_endpoint_names_it_and_what_to_do() -> None:
    async with IpfsClient(f"/ip4/127.0.0.1/tcp/{free_port()}") as client:
        with pytest.raises(IpfsError, match="cannot reach the IPFS node") as err:
            await client.id()
    assert "IPFS.Embedded.Enabled" in err.value.hint


async def test_publisher_answers_the_ipfs_result_and_checks_the_cid(kubo: StandInKubo,
                                                                    tmp_path: Path) -> None:
    root = results_tree(tmp_path / "results")
    kubo.add_hash = results_cid(root)
    execution = Execution(id="e-1")
    async with IpfsClient(kubo.url) as client:
        publisher = IPFSPublisher(client, swarm_addrs=["/ip4/127.0.0.1/tcp/1/p2p/QmA"])
        result = await publisher.publish(execution, root)
        assert result.to_dict() == {"Type": "ipfs", "Params": {
            "CID": results_cid(root), "SwarmAddrs": ["/ip4/127.0.0.1/tcp/1/p2p/QmA"]}}
        kubo.add_hash = "QmSomethingElseEntirelyXXXXXXXXXXXXXXXXXXXXXXX"
        with pytest.raises(PublisherError, match="other settings"):
            await publisher.publish(execution, root)


def test_storage_check_needs_a_cid() -> None:
    storage = IPFSStorage(IpfsClient("http://127.0.0.1:1"))
    assert storage.check(SpecConfig("ipfs", {"CID": CID})) == []
    assert "Params.CID" in storage.check(SpecConfig("ipfs", {}))[0]
    assert "not a CID" in storage.check(SpecConfig("ipfs", {"CID": "hello"}))[0]


async def test_storage_prepare_fetches_into_its_own_folder(kubo: StandInKubo,
                                                           tmp_path: Path) -> None:
    kubo.tar = tar_of({CID: None, f"{CID}/input.txt": b"data"})
    called: list[bool] = []

    async def before() -> None:
        called.append(True)

    async with IpfsClient(kubo.url) as client:
        storage = IPFSStorage(client, timeout=5, before_fetch=before)
        source = InputSource(SpecConfig("ipfs", {"CID": CID}), alias="data", target="/inputs")
        prepared = await storage.prepare(source, tmp_path)
        assert called == [True]
        assert (prepared.host_path / "input.txt").read_bytes() == b"data"
        assert prepared.target == "/inputs"
        await storage.cleanup(prepared)
        assert list(tmp_path.iterdir()) == []

        kubo.stall = True
        storage.timeout = 0.5
        with pytest.raises(StorageError, match=f'input "data".*{CID}.*timed out'):
            await storage.prepare(source, tmp_path)
        assert list(tmp_path.iterdir()) == []  # nothing left behind


async def test_job_get_fetches_through_the_configured_downloader_endpoint(
        kubo: StandInKubo, tmp_path: Path) -> None:
    from bacalhau import _native
    from bacalhau.config import Config
    from bacalhau.ipfs.results import fetch_archives, ipfs_result

    result = {"Type": "ipfs", "Params": {"CID": CID, "SwarmAddrs": ["/ip4/127.0.0.1/tcp/9/p2p/Q"]}}
    assert ipfs_result(result) == (CID, ["/ip4/127.0.0.1/tcp/9/p2p/Q"])
    assert ipfs_result({"Type": "urlDownload", "Params": {"URL": "http://x"}}) is None
    kubo.tar = tar_of({CID: None, f"{CID}/stdout": b"out"})
    config = Config({"DataDir": str(tmp_path / "client"),
                     "ResultDownloaders": {"Types": {"IPFS": {"Endpoint": kubo.url}}}})
    archive = tmp_path / "r.tar.gz"
    await fetch_archives([(CID, [], archive)], config=config, timeout=5)
    _native.unpack(str(archive), str(tmp_path / "unpacked"))
    assert (tmp_path / "unpacked" / "stdout").read_bytes() == b"out"
    assert [r["path"] for r in kubo.requests] == ["/api/v0/get"]  # no embedded node started
    assert not (tmp_path / "client").exists()


async def test_job_get_without_any_ipfs_source_says_what_to_configure(tmp_path: Path) -> None:
    from bacalhau.config import Config
    from bacalhau.ipfs.results import fetch_archives

    config = Config({"DataDir": str(tmp_path)})
    with pytest.raises(IpfsError, match="no IPFS node to fetch it from") as err:
        await fetch_archives([(CID, [], tmp_path / "r.tar.gz")], config=config, timeout=5)
    assert "ResultDownloaders.Types.IPFS.Endpoint" in err.value.hint
    assert list(tmp_path.iterdir()) == []
