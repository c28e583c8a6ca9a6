"""`bacalhau.content.cid` and `bacalhau cid` against Kubo's known answers (reference unixfs.md).

R(n, seed) is Kubo's deterministic test input: the ChaCha20 keystream with key = SHA-256(seed),
a zero nonce and counter 0. It comes from `cryptography` when installed, else from the
`openssl enc -chacha20` command (same cipher, IV = 4-byte counter 0 + 12-byte zero nonce);
tests that need it are skipped when neither is available. The rust crate's own tests
(rust/unixfs/tests/vectors.rs) cover every vector with the `chacha20` crate.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacalhau.cli.main import cli
from bacalhau.content import DEFAULT_PROFILE, PROFILES, CidError, cid, cid_of_data

pytestmark = pytest.mark.unit

CHUNK = 256 * 1024
MiB = 1024 * 1024
ALPHA = "abcdefghijklmnopqrstuvwxyz01234567890-_"  # 39 characters, "0" twice, as Kubo's


# --- R(n, seed) ------------------------------------------------------------------------------

def _cryptography_available() -> bool:
    try:
        import cryptography.hazmat.primitives.ciphers  # noqa: F401
    except ImportError:
        return False
    return True


HAVE_CRYPTOGRAPHY = _cryptography_available()
HAVE_OPENSSL = shutil.which("openssl") is not None
needs_r = pytest.mark.skipif(
    not (HAVE_CRYPTOGRAPHY or HAVE_OPENSSL),
    reason="R(n, seed) needs ChaCha20: neither `cryptography` nor the openssl command is here",
)
slow = pytest.mark.skipif(
    os.environ.get("BACALHAU_SLOW") != "1",
    reason="slow: generates and hashes 45 MiB to 1 GiB inputs; set BACALHAU_SLOW=1 to run",
)


def write_r(path: Path, n: int, seed: str) -> Path:
    """Writes R(n, seed) to `path` without holding it in memory."""
    key = hashlib.sha256(seed.encode()).digest()
    if HAVE_CRYPTOGRAPHY:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

        encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
        zeros = bytes(8 * MiB)
        with path.open("wb") as out:
            left = n
            while left:
                take = min(left, len(zeros))
                out.write(encryptor.update(zeros[:take]))
                left -= take
        return path
    with path.open("wb") as out, subprocess.Popen(
        ["head", "-c", str(n), "/dev/zero"], stdout=subprocess.PIPE
    ) as zeros:
        subprocess.run(
            ["openssl", "enc", "-chacha20", "-K", key.hex(), "-iv", "00" * 16],
            stdin=zeros.stdout,
            stdout=out,
            check=True,
        )
    assert path.stat().st_size == n
    return path


def r_bytes(tmp_path: Path, n: int, seed: str) -> bytes:
    return write_r(tmp_path / f"r-{seed}-{n}", n, seed).read_bytes()


def names(tmp_path: Path, seed: str, lengths: list[int]) -> list[str]:
    """File names drawn from R(1 MiB, seed), one character per byte."""
    pool = r_bytes(tmp_path, MiB, seed)
    out, at = [], 0
    for length in lengths:
        out.append("".join(ALPHA[b % len(ALPHA)] for b in pool[at : at + length]))
        at += length
    return out


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- small files -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("data", "profile", "want"),
    [
        (b"", "unixfs-v0-2015", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
        (b"", "cid-v1", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
        (b"hello world", "unixfs-v0-2015", "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"),
        (b"hello world", "cid-v1", "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
        (b"hello world\n", "unixfs-v0-2015", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
        (b"hello world\n", "cid-v1",
         "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
    ],
)
def test_small_file_vectors(tmp_path: Path, data: bytes, profile: str, want: str) -> None:
    assert cid(write(tmp_path / "f", data), profile) == want
    assert cid_of_data(data, profile) == want


def test_default_profile_is_kubos_default(tmp_path: Path) -> None:
    assert DEFAULT_PROFILE == "unixfs-v0-2015"
    assert cid(write(tmp_path / "f", b"hello world")).startswith("Qm")


def test_empty_directory_and_wrapped_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cid(empty) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    write(tmp_path / "w" / "example.jpg", b"")
    assert cid(tmp_path / "w") == "QmaG4FuMqEBnQNn3C8XJ5bpW8kLs7zq2ZXgHptJHbKDDVx"


# --- chunk boundaries and the directory vector -------------------------------------------------

@needs_r
@pytest.mark.parametrize(
    ("n", "seed", "profile", "want"),
    [
        (CHUNK, "chunk-v0-seed", "unixfs-v0-2015",
         "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"),
        (CHUNK + 1, "chunk-v0-seed", "unixfs-v0-2015",
         "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"),
        (CHUNK + 1, "chunk-v0-seed", "cid-v1",
         "bafybeibyui7o3sbw3yifnewshhrbnuntcehluzvbkwgi5vmtsdobnc2c6y"),
        (MiB, "chunk-v1-seed", "unixfs-v1-2025",
         "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"),
        (MiB + 1, "chunk-v1-seed", "unixfs-v1-2025",
         "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"),
    ],
)
def test_chunk_boundary_vectors(tmp_path: Path, n: int, seed: str, profile: str,
                                want: str) -> None:
    path = write_r(tmp_path / "r.bin", n, seed)
    assert cid(path, profile) == want
    assert cid_of_data(path.read_bytes(), profile) == want


def build_d(root: Path, tmp_path: Path) -> Path:
    d = root / "d"
    write(d / "a.txt", b"hello world\n")
    write(d / "sub" / "b.bin", r_bytes(tmp_path, CHUNK + 1, "chunk-v0-seed"))
    write(d / "sub" / "empty", b"")
    return d


@needs_r
def test_directory_vector(tmp_path: Path) -> None:
    d = build_d(tmp_path / "tree", tmp_path)
    assert cid(d) == "QmWhfZpyPxoAfpu4JgTDX6qdjMoLryCZWBPoRvaDSUNsFv"
    assert cid(d, "cid-v1") == "bafybeiamanpxe5y2xspajqa42hqhfhpfx4rq2oimv5wu7wxq5x63zt5a6y"


@needs_r
def test_thread_count_does_not_change_the_cid(tmp_path: Path) -> None:
    d = build_d(tmp_path / "tree", tmp_path)
    assert {cid(d, threads=t) for t in (0, 1, 2, 3)} == {
        "QmWhfZpyPxoAfpu4JgTDX6qdjMoLryCZWBPoRvaDSUNsFv"
    }


@needs_r
@pytest.mark.parametrize(
    ("seed", "profile", "lengths", "want"),
    [
        ("hamt-unixfs-v0-2015", "unixfs-v0-2015", [30] * 4096,
         "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN"),
        ("hamt-unixfs-v0-2015", "unixfs-v0-2015", [31] * 4033,
         "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"),
        ("hamt-unixfs-v1-2025", "unixfs-v1-2025", [11] * 4765 + [21],
         "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4"),
        ("hamt-unixfs-v1-2025", "unixfs-v1-2025", [11] * 4765 + [22],
         "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"),
    ],
    ids=["v0-basic", "v0-hamt", "v1-2025-basic", "v1-2025-hamt"],
)
def test_hamt_threshold_vectors(tmp_path: Path, seed: str, profile: str, lengths: list[int],
                                want: str) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    for name in names(tmp_path, seed, lengths):
        (d / name).write_bytes(b"x")
    assert cid(d, profile) == want


# --- large inputs ------------------------------------------------------------------------------

@slow
@needs_r
@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "seed", "profile", "want"),
    [
        (174 * CHUNK, "v0-seed", "unixfs-v0-2015",
         "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"),
        (174 * CHUNK + 1, "v0-seed", "unixfs-v0-2015",
         "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"),
        (174 * CHUNK + 1, "v0-seed", "cid-v1",
         "bafybeifr472xiwfk53w5s7bayijk3lq2go6ocqqcfch6ygy5qwza5hkdl4"),
        (1024 * MiB, "v1-2025-seed", "unixfs-v1-2025",
         "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm"),
        (1024 * MiB + 1, "v1-2025-seed", "unixfs-v1-2025",
         "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe"),
    ],
    ids=["174-chunks", "174-chunks+1", "174-chunks+1-cid-v1", "1GiB", "1GiB+1"],
)
def test_large_vectors(tmp_path: Path, n: int, seed: str, profile: str, want: str) -> None:
    assert cid(write_r(tmp_path / "r.bin", n, seed), profile) == want


# --- Kubo's rules: hidden files, symlinks ------------------------------------------------------

def test_hidden_entries_are_skipped_unless_asked(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain / "a.txt", b"hello world\n")
    write(plain / "sub" / "b.txt", b"b")
    dotted = tmp_path / "dotted"
    write(dotted / "a.txt", b"hello world\n")
    write(dotted / "sub" / "b.txt", b"b")
    write(dotted / ".secret", b"x")
    write(dotted / ".git" / "HEAD", b"ref: refs/heads/main\n")
    write(dotted / "sub" / ".cache", b"nested dot files are skipped too")
    assert cid(dotted) == cid(plain)
    assert cid(dotted, hidden=True) != cid(plain)
    # hidden=True adds exactly the dot entries: without them the trees are equal again.
    shutil.rmtree(dotted / ".git")
    (dotted / ".secret").unlink()
    (dotted / "sub" / ".cache").unlink()
    assert cid(dotted, hidden=True) == cid(plain)


def test_a_hidden_root_is_added(tmp_path: Path) -> None:
    root = tmp_path / ".root"
    write(root / "example.jpg", b"")
    assert cid(root) == "QmaG4FuMqEBnQNn3C8XJ5bpW8kLs7zq2ZXgHptJHbKDDVx"


def cid_v1_dag_pb(block: bytes) -> str:
    """CIDv1 (dag-pb, sha2-256) of a block, written out from the multiformats rules."""
    raw = bytes([0x01, 0x70, 0x12, 0x20]) + hashlib.sha256(block).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def symlink_block(target: bytes) -> bytes:
    """PBNode{Data: UnixFS{Type: Symlink, Data: target}}, encoded by hand (short targets)."""
    unixfs = bytes([0x08, 0x04, 0x12, len(target)]) + target
    return bytes([0x0A, len(unixfs)]) + unixfs


def test_symlink_is_a_unixfs_symlink_node(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("some/target.txt")  # dangling is fine: the link itself is added
    assert cid(link, "cid-v1") == cid_v1_dag_pb(symlink_block(b"some/target.txt"))


def test_symlink_in_directory_and_dereference(tmp_path: Path) -> None:
    with_link = tmp_path / "with_link"
    write(with_link / "a.txt", b"hello world\n")
    (with_link / "b.txt").symlink_to("a.txt")
    copied = tmp_path / "copied"
    write(copied / "a.txt", b"hello world\n")
    write(copied / "b.txt", b"hello world\n")
    assert cid(with_link) != cid(copied)
    assert cid(with_link, dereference=True) == cid(copied)


def test_dereference_refuses_dangling_links_and_loops(tmp_path: Path) -> None:
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "gone").symlink_to("nowhere")
    assert cid(dangling).startswith("Qm")
    with pytest.raises(CidError, match=r"gone: no such file or directory"):
        cid(dangling, dereference=True)
    looping = tmp_path / "looping"
    looping.mkdir()
    (looping / "self").symlink_to(".")
    assert cid(looping).startswith("Qm")
    with pytest.raises(CidError, match="symlink loop"):
        cid(looping, dereference=True)


# --- errors ------------------------------------------------------------------------------------

def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CidError, match=r"nope: no such file or directory"):
        cid(tmp_path / "nope")


def test_unknown_profile_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(CidError) as info:
        cid(write(tmp_path / "f", b"x"), "v2")
    message = str(info.value)
    assert '"v2"' in message
    for name in PROFILES:
        assert name in message


def test_every_listed_profile_is_accepted() -> None:
    assert len(set(PROFILES)) == 3
    for name in PROFILES:
        assert cid_of_data(b"hello world\n", name)


def test_special_files_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "pipe")
    with pytest.raises(CidError, match="pipe: unsupported file type"):
        cid(d)


def test_negative_threads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threads"):
        cid(tmp_path, threads=-1)


# --- CLI ---------------------------------------------------------------------------------------

def test_cli_prints_the_cid(tmp_path: Path) -> None:
    f = write(tmp_path / "f", b"hello world\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["cid", str(f)])
    assert result.exit_code == 0, result.output
    assert result.output == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o\n"
    result = runner.invoke(cli, ["cid", "--profile", "cid-v1", str(f)])
    assert result.output == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4\n"
    write(tmp_path / "d" / ".hidden", b"x")
    plain = runner.invoke(cli, ["cid", str(tmp_path / "d")]).output
    assert plain == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn\n"
    assert runner.invoke(cli, ["cid", "-H", str(tmp_path / "d")]).output != plain


def test_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["cid", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "Error:" in result.output and "no such file or directory" in result.output
    result = runner.invoke(cli, ["cid", "--profile", "v2", str(tmp_path)])
    assert result.exit_code == 2
    assert "unixfs-v1-2025" in result.output
