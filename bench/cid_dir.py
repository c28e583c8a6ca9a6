"""CID of a directory of 10k small files: `bacalhau.content.cid` beside aleph-cid (an
independent Kubo-compatible implementation, PyPI, run from its own venv if it can be built:
scripts/aleph_cid_venv.sh) and beside a hashlib baseline, all on the same tree in the same run.

Baseline: Python reads every file and SHA-256es its bytes (`hashlib`, one `os.walk`), the least
any content addressing of the tree must do, without any DAG building. Our figure is the whole
CID (dag-pb framing, directory nodes, HAMT sharding: 10k entries in one folder exceed the
threshold) with 1 thread and with all cores; aleph-cid's is its `hash_folder` (best wall time
inside its own process, so its interpreter start is not counted). All three must see the same
tree; ours and aleph-cid's CIDs must be equal.

Run: `.venv/bin/python -m bench.cid_dir [--files N] [--rounds R]`; writes
bench/results/cid_dir.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bacalhau.content import cid

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_SCRIPT = ROOT / "scripts" / "aleph_cid_venv.sh"
WORKER = ROOT / "scripts" / "aleph_cid_worker.py"


def make_tree(root: Path, files: int, rng: random.Random) -> int:
    """`files` small files (0..4 KiB): half flat in `root` (one sharded folder), half spread
    over 100 sub-folders. Returns the total bytes."""
    total = 0
    for i in range(files):
        folder = root if i % 2 == 0 else root / f"d{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randrange(4096))
        (folder / f"file-{i:05d}.dat").write_bytes(data)
        total += len(data)
    return total


def hashlib_walk(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def aleph_python() -> tuple[str | None, str]:
    try:
        proc = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True,
                              timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, repr(exc)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None, (proc.stderr or proc.stdout).strip()[-300:]
    return lines[-1], ""


def best(fn: Any, rounds: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "cid_dir.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cid-dir-") as tmp:
        root = Path(tmp) / "tree"
        size = make_tree(root, args.files, random.Random(10_000))
        hashlib_walk(root)  # warm the page cache and dentries for everyone
        t_hashlib, _ = best(lambda: hashlib_walk(root), args.rounds)
        t_ours_1, ours = best(lambda: cid(root, threads=1, hidden=True), args.rounds)
        t_ours_all, ours_all = best(lambda: cid(root, hidden=True), args.rounds)
        assert ours == ours_all
        figures: dict[str, Any] = {"hashlib_walk_s": t_hashlib, "cid_1_thread_s": t_ours_1,
                                   "cid_all_cores_s": t_ours_all}
        python, why = aleph_python()
        aleph: dict[str, Any] = {"available": python is not None, "reason": why}
        if python is not None:
            request = {"items": [{"path": str(root), "kind": "dir", "cid_version": 0}],
                       "repeat": args.rounds}
            proc = subprocess.run([python, str(WORKER)], input=json.dumps(request),
                                  capture_output=True, text=True, timeout=600, check=True)
            answer = json.loads(proc.stdout)
            aleph.update(cid=answer["cids"][0], seconds=answer["seconds"][0],
                         same_cid=answer["cids"][0] == ours)
            figures["aleph_cid_s"] = answer["seconds"][0]
            if answer["cids"][0] != ours:
                raise SystemExit(f"CIDs differ: ours {ours}, aleph-cid {answer['cids'][0]}")

    print(f"\n{args.files} files, {size / 1e6:.1f} MB, best of {args.rounds}; CID {ours}")
    print(f"{'figure':<18}{'ms':>9} | {'baseline':<24}{'ms':>9} | ratio (baseline/figure)")
    rows = [("cid, 1 thread", t_ours_1), ("cid, all cores", t_ours_all)]
    for name, value in rows:
        print(f"{name:<18}{value * 1e3:>9.1f} | {'hashlib walk':<24}{t_hashlib * 1e3:>9.1f} | "
              f"{t_hashlib / value:5.2f}x")
        if "aleph_cid_s" in figures:
            a = figures["aleph_cid_s"]
            print(f"{'':<18}{'':>9} | {'aleph-cid hash_folder':<24}{a * 1e3:>9.1f} | "
                  f"{a / value:5.2f}x")
    if python is None:
        print(f"aleph-cid not measured: {why}")
    report = {
        "benchmark": "cid_dir", "files": args.files, "bytes": size, "rounds": args.rounds,
        "profile": "unixfs-v0-2015", "hidden": True, "cid": ours, "seconds": figures,
        "speedups": {k: figures[k] / figures["cid_1_thread_s"]
                     for k in ("hashlib_walk_s", "aleph_cid_s") if k in figures},
        "aleph_cid": aleph, "cores": os.cpu_count(),
        "platform": platform.platform(), "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
