"""Property tests: `bacalhau.content.cid` against `aleph-cid` (PyPI), an independent
Kubo-compatible implementation, on seeded random files and directory trees whose sizes sit
around the chunk (256 KiB) and link (174 per node) boundaries.

aleph-cid lives in its own venv (scripts/aleph_cid_venv.sh) and runs in a subprocess
(scripts/aleph_cid_worker.py): it is a reference to check against, never a dependency. The
tests skip, naming the reason, when that venv cannot be built (no network, no wheel).

What aleph-cid's folder hashing covers, and so what the trees contain: regular files (hidden
ones included: hence `hidden=True` on our side), nested folders, UTF-8 names; no symlinks and
no empty folders (it hashes a file set, as Kubo's HTTP add does, so an empty folder never
appears there). Those cases are covered by the Kubo known-answer vectors
(tests/unit/test_content_cid.py).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from bacalhau.content import cid

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
VENV_SCRIPT = ROOT / "scripts" / "aleph_cid_venv.sh"
WORKER = ROOT / "scripts" / "aleph_cid_worker.py"

CHUNK = 256 * 1024
LINKS = 174
# (our profile, aleph-cid's cid_version): both use 256 KiB chunks and 174 links.
PROFILES = [("unixfs-v0-2015", 0), ("cid-v1", 1)]


@pytest.fixture(scope="module")
def aleph_python() -> str:
    """Python of the separate aleph-cid venv; skips, naming why, if it cannot be built."""
    try:
        proc = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True,
                              timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"aleph-cid venv could not be created: {exc!r}")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        tail = (proc.stderr or proc.stdout).strip()[-600:]
        pytest.skip(f"aleph-cid could not be installed (rc={proc.returncode}): {tail}")
    return lines[-1]


def aleph_cids(python: str, items: list[dict]) -> list[str]:
    proc = subprocess.run([python, str(WORKER)], input=json.dumps({"items": items}),
                          capture_output=True, text=True, timeout=300, check=True)
    return list(json.loads(proc.stdout)["cids"])


def boundary_sizes(rng: random.Random, count: int) -> list[int]:
    """Sizes at and around multiples of the chunk size, plus a few anywhere below 3 chunks."""
    sizes = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1}
    while len(sizes) < count:
        if rng.random() < 0.5:
            sizes.add(max(0, rng.randint(1, 3) * CHUNK + rng.randint(-2, 2)))
        else:
            sizes.add(rng.randrange(3 * CHUNK))
    return sorted(sizes)


def write(path: Path, size: int, rng: random.Random) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rng.randbytes(size))
    return path


NAME_CHARS = "abcxyz0123456789-_.é€ "


def random_name(rng: random.Random) -> str:
    name = "".join(rng.choice(NAME_CHARS) for _ in range(rng.randint(1, 12))).strip()
    if rng.random() < 0.15:
        name = "." + name  # hidden: must be hashed like any other name
    return name if name not in ("", ".", "..") else "n"


def random_tree(root: Path, rng: random.Random, depth: int = 0) -> None:
    """A folder with 1..8 entries, at least one regular file somewhere below every folder."""
    root.mkdir(parents=True)
    used: set[str] = set()
    entries = rng.randint(1, 8)
    for i in range(entries):
        name = random_name(rng)
        while name in used:
            name += str(i)
        used.add(name)
        if depth < 3 and rng.random() < 0.3:
            random_tree(root / name, rng, depth + 1)
        else:
            size = rng.choice([0, 1, 17, 4096, CHUNK - 1, CHUNK, CHUNK + 1]
                              if rng.random() < 0.3 else [rng.randrange(2048)])
            write(root / name, size, rng)


def test_random_files_match_aleph_cid(aleph_python: str, tmp_path: Path) -> None:
    rng = random.Random(0xC1D)
    files = [write(tmp_path / f"f{i}-{n}.bin", n, rng)
             for i, n in enumerate(boundary_sizes(rng, 24))]
    items = [{"path": str(f), "kind": "file", "cid_version": v}
             for f in files for _, v in PROFILES]
    theirs = aleph_cids(aleph_python, items)
    ours = [cid(f, p) for f in files for p, _ in PROFILES]
    mismatches = [(i["path"], i["cid_version"], a, b)
                  for i, a, b in zip(items, ours, theirs, strict=True) if a != b]
    assert mismatches == []


def test_files_around_the_link_boundary_match_aleph_cid(aleph_python: str,
                                                         tmp_path: Path) -> None:
    """174 chunks fill one node; one byte more needs a second tree level."""
    rng = random.Random(174)
    files = [write(tmp_path / f"links-{n}.bin", n, rng)
             for n in (LINKS * CHUNK - 1, LINKS * CHUNK, LINKS * CHUNK + 1)]
    items = [{"path": str(f), "kind": "file", "cid_version": v}
             for f in files for _, v in PROFILES]
    assert [cid(f, p) for f in files for p, _ in PROFILES] == aleph_cids(aleph_python, items)


def test_random_trees_match_aleph_cid(aleph_python: str, tmp_path: Path) -> None:
    rng = random.Random(20250)
    trees = []
    for i in range(12):
        root = tmp_path / f"tree{i}"
        random_tree(root, rng)
        trees.append(root)
    items = [{"path": str(t), "kind": "dir", "cid_version": v}
             for t in trees for _, v in PROFILES]
    theirs = aleph_cids(aleph_python, items)
    ours = [cid(t, p, hidden=True) for t in trees for p, _ in PROFILES]
    mismatches = [(i["path"], i["cid_version"], a, b)
                  for i, a, b in zip(items, ours, theirs, strict=True) if a != b]
    assert mismatches == []


def test_a_sharded_directory_matches_aleph_cid(aleph_python: str, tmp_path: Path) -> None:
    """7000 entries: above the 256 KiB threshold, so both sides build a HAMT."""
    root = tmp_path / "big"
    root.mkdir()
    rng = random.Random(7000)
    for i in range(7000):
        (root / f"entry-{i:05d}-{rng.randrange(10**6)}").write_bytes(rng.randbytes(i % 7))
    items = [{"path": str(root), "kind": "dir", "cid_version": v} for _, v in PROFILES]
    assert [cid(root, p, hidden=True) for p, _ in PROFILES] == aleph_cids(aleph_python, items)
