"""`inline` inputs: RFC 2397 data: URLs written to files or unpacked from tar.gz."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pytest

from bacalhau.errors import StorageError
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage import InlineStorage, StorageProvider
from bacalhau.storage.inline import parse_data_url

pytestmark = pytest.mark.unit


def inline(url: str, target: str = "/inputs/hello.txt", alias: str = "") -> InputSource:
    return InputSource(SpecConfig("inline", {"URL": url}), alias=alias, target=target)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_is_a_storage_provider() -> None:
    assert isinstance(InlineStorage(), StorageProvider)
    assert InlineStorage.types == ("inline",)


@pytest.mark.parametrize(
    ("url", "media_type", "data"),
    [
        ("data:,hello%20world", "", b"hello world"),
        ("data:text/plain;base64,aGVsbG8=", "text/plain", b"hello"),
        ("data:text/plain;charset=utf-8;base64,aGVsbG8", "text/plain", b"hello"),  # no padding
        ("DATA:;base64,AAEC", "", b"\x00\x01\x02"),
        ("data:text/plain,caf%C3%A9", "text/plain", "café".encode()),
        ("data:application/octet-stream;base64,aGVs%0AbG8=", "application/octet-stream", b"hello"),
    ],
)
def test_parse_data_url(url: str, media_type: str, data: bytes) -> None:
    parsed = parse_data_url(url)
    assert (parsed.media_type, parsed.data) == (media_type, data)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x", 'start with "data:"'),
        ("data:text/plain", 'no ","'),
        ("data:;base64,@@@", "base64"),
    ],
)
def test_parse_data_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_data_url(url)


async def test_plain_data_becomes_a_file_named_after_the_target(tmp_path: Path) -> None:
    storage = InlineStorage()
    source = inline("data:text/plain;base64," + base64.b64encode(b"hi there\n").decode())
    assert storage.check(source.source) == []
    assert await storage.size(source.source) == 9
    prepared = await storage.prepare(source, tmp_path)
    assert prepared.host_path.name == "hello.txt"
    assert prepared.host_path.read_bytes() == b"hi there\n"
    assert prepared.target == "/inputs/hello.txt"
    assert not prepared.read_write
    assert prepared.host_path.is_relative_to(tmp_path)
    await storage.cleanup(prepared)
    assert list(tmp_path.iterdir()) == []


async def test_a_busy_work_dir_gets_a_folder_of_its_own(tmp_path: Path) -> None:
    storage = InlineStorage()
    (tmp_path / "hello.txt").write_bytes(b"not ours")
    prepared = await storage.prepare(inline("data:,ours"), tmp_path)
    assert prepared.host_path.parent.name.startswith("inline-")
    assert prepared.host_path.read_bytes() == b"ours"
    await storage.cleanup(prepared)
    assert [p.name for p in tmp_path.iterdir()] == ["hello.txt"]
    assert (tmp_path / "hello.txt").read_bytes() == b"not ours"


async def test_gzip_data_is_unpacked_to_a_directory(tmp_path: Path) -> None:
    payload = tar_gz({"a.txt": b"A", "sub/b.txt": b"BB"})
    url = "data:application/gzip;base64," + base64.b64encode(payload).decode()
    storage = InlineStorage()
    prepared = await storage.prepare(inline(url, target="/inputs"), tmp_path / "work")
    assert prepared.host_path.is_dir()
    assert (prepared.host_path / "a.txt").read_bytes() == b"A"
    assert (prepared.host_path / "sub" / "b.txt").read_bytes() == b"BB"
    await storage.cleanup(prepared)
    assert list((tmp_path / "work").iterdir()) == []


async def test_unsafe_archive_is_refused(tmp_path: Path) -> None:
    payload = tar_gz({"../escape.txt": b"x"})
    url = "data:application/gzip;base64," + base64.b64encode(payload).decode()
    with pytest.raises(StorageError, match=r"input /inputs: .*not a safe tar\.gz"):
        await InlineStorage().prepare(inline(url, target="/inputs"), tmp_path)
    assert not (tmp_path / "escape.txt").exists()
    assert list(tmp_path.iterdir()) == []  # nothing left behind


async def test_bad_url_names_the_input(tmp_path: Path) -> None:
    storage = InlineStorage()
    source = inline("data:;base64,!!!", alias="my-script")
    assert storage.check(source.source)[0].startswith("inline source URL is invalid")
    with pytest.raises(StorageError, match=r'input "my-script" \(target /inputs/hello\.txt\)'):
        await storage.prepare(source, tmp_path)
    missing = InputSource(SpecConfig("inline", {}), target="/x")
    assert "needs Params.URL" in storage.check(missing.source)[0]
    with pytest.raises(StorageError, match=r"needs Params\.URL"):
        await storage.prepare(missing, tmp_path)


async def test_repeated_content_is_a_hard_link_to_the_kept_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bacalhau.storage import inline as inline_module

    monkeypatch.setattr(inline_module, "CACHE_MIN_FILE", 0)  # small contents in this test
    cache = tmp_path / "cache"
    (cache).mkdir()
    (cache / "stale").write_bytes(b"left by an earlier run")
    storage = InlineStorage(cache_dir=cache)
    source = inline("data:application/wasm;base64," + base64.b64encode(b"\0asm-1").decode(),
                    target="/wasm/main.wasm")
    once_dir, first_dir, second_dir = tmp_path / "e0", tmp_path / "e1", tmp_path / "e2"
    for folder in (once_dir, first_dir, second_dir):
        folder.mkdir()
    once = await storage.prepare(source, once_dir)
    assert not (cache / "stale").exists()  # an earlier run's files are never linked to
    assert list(cache.iterdir()) == []  # a content seen once costs no cache entry
    first = await storage.prepare(source, first_dir)  # seen twice: kept from now on
    assert first.host_path.stat().st_ino != once.host_path.stat().st_ino
    second = await storage.prepare(source, second_dir)
    assert second.host_path == second_dir / "main.wasm"
    assert second.host_path.read_bytes() == b"\0asm-1"
    assert second.host_path.stat().st_ino == first.host_path.stat().st_ino
    assert not second.read_write  # mounted read-only: no run can change the shared file
    await storage.cleanup(first)
    assert not first.host_path.exists()
    assert second.host_path.read_bytes() == b"\0asm-1"
    await storage.cleanup(second)
    assert list(second_dir.iterdir()) == []
    # other content is written, not linked, and kept from its second sighting on
    other = inline("data:,other", target="/wasm/main.wasm")
    third = await storage.prepare(other, first_dir)
    assert third.host_path.read_bytes() == b"other"
    assert len(list(cache.iterdir())) == 1
    await storage.cleanup(third)
    await storage.prepare(other, first_dir)
    assert len(list(cache.iterdir())) == 2  # both contents kept, each once


async def test_link_cache_falls_back_to_writing_and_stays_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bacalhau.storage import inline as inline_module

    monkeypatch.setattr(inline_module, "CACHE_FILES", 2)
    monkeypatch.setattr(inline_module, "CACHE_MIN_FILE", 0)
    cache = tmp_path / "cache"
    storage = InlineStorage(cache_dir=cache)
    sources = [inline(f"data:,content-{i}", target="/in/f.txt") for i in range(3)]
    for i, source in enumerate(sources):
        for sighting in range(2):  # kept from the second sighting on
            work = tmp_path / f"w{i}-{sighting}"
            work.mkdir()
            await storage.prepare(source, work)
    assert len(list(cache.iterdir())) == 2  # the least recently used one left
    # a kept file removed behind the storage's back: written again, with the right content
    for kept in cache.iterdir():
        kept.unlink()
    work = tmp_path / "again"
    work.mkdir()
    prepared = await storage.prepare(sources[2], work)
    assert prepared.host_path.read_bytes() == b"content-2"
    assert prepared.host_path.stat().st_nlink == 2  # kept again for the next one


async def test_without_a_cache_dir_every_input_is_its_own_file(tmp_path: Path) -> None:
    storage = InlineStorage()
    source = inline("data:,same")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = await storage.prepare(source, tmp_path / "a")
    b = await storage.prepare(source, tmp_path / "b")
    assert a.host_path.stat().st_nlink == b.host_path.stat().st_nlink == 1


async def test_small_content_is_always_written_never_kept(tmp_path: Path) -> None:
    """A link costs a file creation like a write does: small files are not worth keeping."""
    cache = tmp_path / "cache"
    storage = InlineStorage(cache_dir=cache)
    source = inline("data:,small and repeated")
    for i in range(3):
        prepared = await storage.prepare(source, tmp_path / f"w{i}")
        assert prepared.host_path.stat().st_nlink == 1
    assert not cache.exists() or list(cache.iterdir()) == []


async def test_a_missing_work_dir_is_made_and_the_file_written_straight_into_it(
        tmp_path: Path) -> None:
    work = tmp_path / "exec" / ".input-1"
    prepared = await InlineStorage().prepare(inline("data:,x"), work)
    assert prepared.host_path == work / "hello.txt"
    assert [p.name for p in work.iterdir()] == ["hello.txt"]


def test_read_bytes_gives_one_file_content_without_writing(tmp_path: Path) -> None:
    storage = InlineStorage(cache_dir=tmp_path / "cache")
    wasm = b"\0asm\x01\0\0\0"
    url = "data:application/wasm;base64," + base64.b64encode(wasm).decode()
    assert storage.read_bytes(inline(url, target="/wasm/main.wasm")) == wasm
    gz = "data:application/gzip;base64," + base64.b64encode(tar_gz({"a": b"A"})).decode()
    assert storage.read_bytes(inline(gz, target="/in")) is None  # a directory
    assert storage.read_bytes(inline("data:;base64,!!!")) is None  # prepare says why
    assert list(tmp_path.iterdir()) == []
