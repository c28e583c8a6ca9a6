"""Native pack/unpack/merge against real files, including hostile archives."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from bacalhau import _native
from bacalhau._native import MergeError, merge_results, pack_dir, unpack

pytestmark = pytest.mark.unit


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def results_dir(root: Path, n: int, extra: dict[str, str]) -> Path:
    write(root / "stdout", f"out {n}\n")
    write(root / "stderr", f"err {n}\n")
    write(root / "exitCode", "0")
    (root / "outputs").mkdir(exist_ok=True)
    for rel, text in extra.items():
        write(root / rel, text)
    return root


def packed(tmp: Path, name: str, n: int, extra: dict[str, str] | None = None) -> Path:
    src = results_dir(tmp / f"src-{name}", n, extra or {})
    archive = tmp / f"{name}.tar.gz"
    assert pack_dir(str(src), str(archive)) == archive.stat().st_size
    return archive


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def hostile(path: Path, *members: tuple[str, bytes, str]) -> Path:
    """members: (name, type, data-or-link-target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = payload
                tar.addfile(info)
    return path


def test_roundtrip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src / "a" / "b.txt", "hello")
    write(src / "top", "x")
    (src / "empty").mkdir()
    os.symlink("a/b.txt", src / "link")
    archive = tmp_path / "r.tar.gz"
    size = pack_dir(src, archive)  # PathLike accepted
    assert size > 0
    dest = tmp_path / "dest"
    unpack(str(archive), str(dest))
    assert tree(dest) == tree(src)
    assert (dest / "link").read_text() == "hello"
    assert os.readlink(dest / "link") == "a/b.txt"
    # Python's tarfile reads what we write.
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["a", "a/b.txt", "empty", "link", "top"]


def test_pack_is_deterministic(tmp_path: Path) -> None:
    for d, order in (("x", ["b", "a/c", "a/b"]), ("y", ["a/b", "b", "a/c"])):
        for rel in order:
            write(tmp_path / d / rel, rel)
    pack_dir(str(tmp_path / "x"), str(tmp_path / "x.tgz"))
    pack_dir(str(tmp_path / "y"), str(tmp_path / "y.tgz"))
    assert (tmp_path / "x.tgz").read_bytes() == (tmp_path / "y.tgz").read_bytes()


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "a/../../x"])
def test_pack_refuses_links_leaving_src(tmp_path: Path, target: str) -> None:
    src = tmp_path / "src"
    write(src / "f", "x")
    os.symlink(target, src / "evil")
    with pytest.raises(MergeError, match="evil"):
        pack_dir(str(src), str(tmp_path / "o.tar.gz"))
    assert not (tmp_path / "o.tar.gz").exists()


@pytest.mark.parametrize(
    ("members", "entry"),
    [
        ([("../evil", tarfile.REGTYPE, "x")], "../evil"),
        ([("a/../../evil", tarfile.REGTYPE, "x")], "a/../../evil"),
        ([("/tmp/bacalhau-evil-abs", tarfile.REGTYPE, "x")], "/tmp/bacalhau-evil-abs"),
        ([("l", tarfile.SYMTYPE, "/etc")], "l"),
        ([("l", tarfile.SYMTYPE, "../outside")], "l"),
        ([("l", tarfile.SYMTYPE, "sub"), ("l/f", tarfile.REGTYPE, "x")], "l/f"),
        ([("h", tarfile.LNKTYPE, "../outside")], "h"),
        ([("dev", tarfile.CHRTYPE, "")], "dev"),
        ([("blk", tarfile.BLKTYPE, "")], "blk"),
        ([("pipe", tarfile.FIFOTYPE, "")], "pipe"),
    ],
)
def test_unpack_refuses_hostile_entries(
    tmp_path: Path, members: list[tuple[str, bytes, str]], entry: str
) -> None:
    archive = hostile(tmp_path / "h.tar.gz", *members)
    dest = tmp_path / "box" / "dest"
    with pytest.raises(MergeError, match="refusing archive entry") as err:
        unpack(str(archive), str(dest))
    assert repr(entry) in str(err.value) or f'"{entry}"' in str(err.value)
    assert not (tmp_path / "box" / "evil").exists()
    assert not (tmp_path / "box" / "outside").exists()
    assert not Path("/tmp/bacalhau-evil-abs").exists()


def test_merge_appends_and_combines(tmp_path: Path) -> None:
    a = packed(tmp_path, "e-1", 1, {"outputs/a.txt": "A"})
    b = packed(tmp_path, "e-2", 2, {"outputs/b.txt": "B"})
    out = tmp_path / "job"
    written = merge_results([str(a), str(b)], str(out), False)
    assert written == ["exitCode", "outputs/a.txt", "outputs/b.txt", "stderr", "stdout"]
    assert (out / "stdout").read_text() == "out 1\nout 2\n"
    assert (out / "stderr").read_text() == "err 1\nerr 2\n"
    assert (out / "outputs" / "b.txt").read_text() == "B"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bacalhau-merge")]


def test_merge_conflict_touches_nothing(tmp_path: Path) -> None:
    a = packed(tmp_path, "e-1", 1, {"outputs/same": "1", "outputs/a": "A"})
    b = packed(tmp_path, "e-2", 2, {"outputs/same": "2"})
    out = tmp_path / "job"
    with pytest.raises(MergeError) as err:
        merge_results([str(a), str(b)], str(out))
    assert str(err.value) == (
        "cannot merge results: outputs/same exists in more than one result. Try --raw"
    )
    assert tree(out) == []
    assert isinstance(err.value, _native.MergeError)


def test_merge_conflict_with_out_dir(tmp_path: Path) -> None:
    a = packed(tmp_path, "e-1", 1, {"outputs/a.txt": "A"})
    out = tmp_path / "job"
    write(out / "outputs" / "a.txt", "mine")
    with pytest.raises(MergeError, match=r"outputs/a\.txt exists in more than one result"):
        merge_results([str(a)], str(out), False)
    assert (out / "outputs" / "a.txt").read_text() == "mine"
    assert not (out / "stdout").exists()


def test_merge_refuses_hostile_archive(tmp_path: Path) -> None:
    good = packed(tmp_path, "e-1", 1)
    bad = hostile(tmp_path / "e-2.tar.gz", ("../../escape", tarfile.REGTYPE, "x"))
    out = tmp_path / "job"
    with pytest.raises(MergeError, match="escape"):
        merge_results([str(good), str(bad)], str(out), False)
    assert tree(out) == []
    assert not (tmp_path / "escape").exists()


def test_merge_raw(tmp_path: Path) -> None:
    a = packed(tmp_path, "e-1", 1, {"outputs/same": "1"})
    b = packed(tmp_path, "e-2", 2, {"outputs/same": "2"})
    out = tmp_path / "job"
    written = merge_results([str(a), str(b)], str(out), raw=True)
    assert "raw/e-1/outputs/same" in written and "raw/e-2/stdout" in written
    assert (out / "raw" / "e-2" / "outputs" / "same").read_text() == "2"
    with pytest.raises(MergeError, match="raw/e-1"):
        merge_results([str(a)], str(out), True)
    with pytest.raises(MergeError, match="two archives"):
        merge_results([str(a), str(a)], str(tmp_path / "other"), True)


def test_missing_archive_is_a_merge_error(tmp_path: Path) -> None:
    with pytest.raises(MergeError, match=r"nope\.tar\.gz"):
        unpack(str(tmp_path / "nope.tar.gz"), str(tmp_path / "d"))
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(MergeError):
        merge_results([str(tmp_path / "junk.tar.gz")], str(tmp_path / "out"))
