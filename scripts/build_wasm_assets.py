"""Compile the hand-written WAT modules in python/bacalhau/assets/ to .wasm.

Run after editing any `.wat` file; commit the `.wat` and `.wasm` together (a unit test checks
that rebuilding gives the committed bytes). `--check` compares instead of writing and exits 1
listing the stale modules.

    .venv/bin/python scripts/build_wasm_assets.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import wasmtime

ASSETS_DIR = Path(__file__).resolve().parent.parent / "python" / "bacalhau" / "assets"


def compile_wat(wat_path: Path) -> bytes:
    """Return the binary module for one WAT source file."""
    return bytes(wasmtime.wat2wasm(wat_path.read_text(encoding="utf-8")))


def build(assets_dir: Path = ASSETS_DIR, *, check: bool = False) -> list[Path]:
    """Compile every `*.wat` in `assets_dir`; return the `.wasm` files that changed (or would)."""
    changed: list[Path] = []
    for wat in sorted(assets_dir.glob("*.wat")):
        wasm = wat.with_suffix(".wasm")
        data = compile_wat(wat)
        if wasm.exists() and wasm.read_bytes() == data:
            continue
        changed.append(wasm)
        if not check:
            wasm.write_bytes(data)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument("--assets-dir", type=Path, default=ASSETS_DIR)
    args = parser.parse_args(argv)
    changed = build(args.assets_dir, check=args.check)
    for path in changed:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.name}")
    if args.check and changed:
        print("run scripts/build_wasm_assets.py to rebuild the modules above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
