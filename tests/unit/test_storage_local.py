"""`local` inputs: allow-list matching, read-write rules, CreateAs, and symlink escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.errors import StorageError, ValidationError
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage import LocalStorage, StorageProvider
from bacalhau.storage.local import glob_to_regex

pytestmark = pytest.mark.unit


def local(path: str | Path, target: str = "/inputs", **params: object) -> InputSource:
    return InputSource(
        SpecConfig("local", {"SourcePath": str(path), **params}), alias="data", target=target
    )


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path.resolve()
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "file.txt").write_text("x")
    (root / "secret").mkdir()
    (root / "rw").mkdir()
    return root


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/data", "/data", True),
        ("/data", "/data/x", False),
        ("/data/*", "/data/x", True),
        ("/data/*", "/data/x/y", False),
        ("/data/**", "/data", True),
        ("/data/**", "/data/x/y", True),
        ("/data/**", "/database", False),
        ("/data/**/in", "/data/in", True),
        ("/data/**/in", "/data/a/b/in", True),
        ("/data/?.txt", "/data/a.txt", True),
        ("/data/?.txt", "/data/ab.txt", False),
        ("/data/[ab].txt", "/data/b.txt", True),
        ("/data/[!ab].txt", "/data/b.txt", False),
        ("/d.ta", "/data", False),
    ],
)
def test_glob_matching(pattern: str, path: str, matches: bool) -> None:
    assert (glob_to_regex(pattern).match(path) is not None) is matches


def test_is_a_storage_provider() -> None:
    assert isinstance(LocalStorage(), StorageProvider)
    assert LocalStorage.types == ("local", "localDirectory")


async def test_allowed_path_is_used_in_place(tree: Path, tmp_path: Path) -> None:
    storage = LocalStorage([f"{tree}/data/**"])
    source = local(tree / "data")
    assert storage.check(source.source) == []
    prepared = await storage.prepare(source, tmp_path / "work")
    assert prepared.host_path == tree / "data"
    assert not prepared.read_write
    assert not (tmp_path / "work").exists()  # nothing copied
    await storage.cleanup(prepared)
    assert (tree / "data" / "file.txt").exists()
    assert await storage.size(local(tree / "data" / "file.txt").source) == 1


async def test_path_outside_allow_list_is_refused(tree: Path, tmp_path: Path) -> None:
    storage = LocalStorage([f"{tree}/data/**"])
    (problem,) = storage.check(local(tree / "secret").source)
    assert "is not allow-listed" in problem and f"{tree}/data/**:ro" in problem
    with pytest.raises(StorageError, match=r'input "data" \(target /inputs\).*not allow-listed'):
        await storage.prepare(local(tree / "secret"), tmp_path)
    # an empty allow-list allows nothing
    assert "none" in LocalStorage().check(local(tree / "data").source)[0]


async def test_read_write_needs_an_rw_entry(tree: Path, tmp_path: Path) -> None:
    storage = LocalStorage([f"{tree}/data/**:ro", f"{tree}/rw:rw"])
    (problem,) = storage.check(local(tree / "data").source, read_write=True)
    assert "read-only" in problem and ":rw" in problem
    assert "read-only" in storage.check(local(tree / "data", ReadWrite="true").source)[0]
    with pytest.raises(StorageError, match="allow-listed read-only"):
        await storage.prepare(local(tree / "data", ReadWrite=True), tmp_path)
    prepared = await storage.prepare(local(tree / "rw", ReadWrite="true"), tmp_path)
    assert prepared.read_write and prepared.host_path == tree / "rw"


async def test_symlink_escape_is_refused(tree: Path, tmp_path: Path) -> None:
    (tree / "data" / "sneaky").symlink_to(tree / "secret")
    storage = LocalStorage([f"{tree}/data/**"])
    (problem,) = storage.check(local(tree / "data" / "sneaky").source)
    assert f"resolves to {tree}/secret" in problem
    with pytest.raises(StorageError, match="not allow-listed"):
        await storage.prepare(local(tree / "data" / "sneaky"), tmp_path)
    dotdot = f"{tree}/data/../secret"
    assert "not allow-listed" in storage.check(local(dotdot).source)[0]


async def test_create_as(tree: Path, tmp_path: Path) -> None:
    storage = LocalStorage([f"{tree}/data/**:rw"])
    missing = tree / "data" / "new" / "dir"
    assert "does not exist" in storage.check(local(missing).source)[0]
    with pytest.raises(StorageError, match="does not exist"):
        await storage.prepare(local(missing), tmp_path)
    assert storage.check(local(missing, CreateAs="dir").source) == []
    prepared = await storage.prepare(local(missing, CreateAs="dir"), tmp_path)
    assert prepared.host_path.is_dir()
    new_file = tree / "data" / "other" / "out.txt"
    prepared = await storage.prepare(local(new_file, CreateAs="FILE", ReadWrite=True), tmp_path)
    assert prepared.host_path.is_file() and prepared.read_write
    assert "CreateAs" in storage.check(local(missing, CreateAs="pipe").source)[0]
    # creating outside the allow-list is refused before anything is made
    outside = tree / "elsewhere"
    with pytest.raises(StorageError, match="not allow-listed"):
        await storage.prepare(local(outside, CreateAs="dir"), tmp_path)
    assert not outside.exists()


def test_bad_params_and_allow_list_entries(tree: Path) -> None:
    storage = LocalStorage([f"{tree}/**"])
    assert "needs Params.SourcePath" in storage.check(SpecConfig("local", {}))[0]
    assert "must be absolute" in storage.check(local("relative/path").source)[0]
    assert "ReadWrite" in storage.check(local(tree / "data", ReadWrite="maybe").source)[0]
    with pytest.raises(ValidationError, match='"relative:rw" must be an absolute path'):
        LocalStorage(["relative:rw"])


def test_allow_list_prefix_is_resolved(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "x").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(real)
    # the entry names the link; the source resolves to the real dir: still allowed
    storage = LocalStorage([f"{tmp_path}/alias/**"])
    assert storage.check(local(real / "x").source) == []
    assert storage.check(local(tmp_path / "alias" / "x").source) == []
