"""Publishers: `noop`, and `local` serving the packed results over HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bacalhau.errors import PublisherError
from bacalhau.models import Execution, SpecConfig
from bacalhau.publishers import LocalPublisher, NoopPublisher, Publisher

pytestmark = pytest.mark.unit


def make_results(root: Path) -> dict[str, bytes]:
    files = {
        "stdout": b"hello\n",
        "stderr": b"",
        "exitCode": b"0",
        "outputs/count.txt": b"1 2 3\n",
        "outputs/nested/deep.bin": bytes(range(256)) * 100,
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def read_tar_gz(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                out[member.name.removeprefix("./")] = f.read()
    return out


@pytest.fixture()
async def publisher(tmp_path: Path) -> AsyncIterator[LocalPublisher]:
    pub = LocalPublisher(tmp_path / "published", "127.0.0.1", 0)
    await pub.start()
    try:
        yield pub
    finally:
        await pub.stop()


async def test_noop_publishes_nothing(tmp_path: Path) -> None:
    pub = NoopPublisher()
    assert isinstance(pub, Publisher)
    assert (pub.type, pub.is_installed(), pub.check(SpecConfig("noop"))) == ("noop", True, [])
    result = await pub.publish(Execution(id="e-1"), tmp_path)
    assert result == SpecConfig() and result.is_empty()


async def test_local_publisher_serves_the_results(
    publisher: LocalPublisher, tmp_path: Path
) -> None:
    assert isinstance(publisher, Publisher)
    assert publisher.port != 0
    results = tmp_path / "results"
    files = make_results(results)
    exec_id = f"e-{uuid.uuid4()}"
    spec = await publisher.publish(Execution(id=exec_id), results)
    url = f"http://127.0.0.1:{publisher.port}/{exec_id}.tar.gz"
    assert spec.to_dict() == {"Type": "urlDownload", "Params": {"URL": url}}
    assert (tmp_path / "published" / f"{exec_id}.tar.gz").is_file()
    assert [p.name for p in (tmp_path / "published").iterdir()] == [f"{exec_id}.tar.gz"]

    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200
            body = await resp.read()
        async with session.get(f"http://127.0.0.1:{publisher.port}/e-nope.tar.gz") as resp:
            assert resp.status == 404
        async with session.get(f"http://127.0.0.1:{publisher.port}/..%2Fsecret") as resp:
            assert resp.status == 404
    assert read_tar_gz(body) == files


async def test_archive_unpacks_with_the_native_unpacker(
    publisher: LocalPublisher, tmp_path: Path
) -> None:
    from bacalhau import _native

    results = tmp_path / "results"
    files = make_results(results)
    spec = await publisher.publish(Execution(id="e-native"), results)
    async with aiohttp.ClientSession() as session, session.get(spec.params["URL"]) as resp:
        (tmp_path / "download.tar.gz").write_bytes(await resp.read())
    _native.unpack(str(tmp_path / "download.tar.gz"), str(tmp_path / "out"))
    for rel, data in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == data


async def test_address_is_used_verbatim_in_the_url(tmp_path: Path) -> None:
    pub = LocalPublisher(tmp_path / "pub", "compute-1.example", 0, bind_host="127.0.0.1")
    await pub.start()
    try:
        results = tmp_path / "results"
        make_results(results)
        spec = await pub.publish(Execution(id="e-abc"), results)
        assert spec.params["URL"] == f"http://compute-1.example:{pub.port}/e-abc.tar.gz"
    finally:
        await pub.stop()
    assert not pub.started


async def test_publish_errors(tmp_path: Path) -> None:
    pub = LocalPublisher(tmp_path / "pub", "127.0.0.1", 0)
    with pytest.raises(PublisherError, match=r"start\(\) it"):
        await pub.publish(Execution(id="e-1"), tmp_path)
    await pub.start()
    try:
        with pytest.raises(PublisherError, match="is not a directory"):
            await pub.publish(Execution(id="e-1"), tmp_path / "missing")
        with pytest.raises(PublisherError, match="execution id"):
            await pub.publish(Execution(id="../e-1"), tmp_path)
        # a link leaving the results dir is refused and leaves no archive behind
        results = tmp_path / "results"
        make_results(results)
        (results / "outputs" / "escape").symlink_to(tmp_path / "pub")
        with pytest.raises(PublisherError, match="could not pack"):
            await pub.publish(Execution(id="e-2"), results)
        assert list((tmp_path / "pub").iterdir()) == []
    finally:
        await pub.stop()


async def test_port_in_use_is_a_clear_error(
    publisher: LocalPublisher, tmp_path: Path
) -> None:
    other = LocalPublisher(tmp_path / "other", "127.0.0.1", publisher.port)
    with pytest.raises(PublisherError, match=f"could not listen on 127.0.0.1:{publisher.port}"):
        await other.start()
