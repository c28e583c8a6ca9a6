"""WebAssembly modules shipped with bacalhau-py: `wordcount` (an example job) and small test
modules (`trap`, `loop`, `memhog`, `probe`, `touch`). Each `.wasm` is compiled from the `.wat`
beside it by `scripts/build_wasm_assets.py`; both are committed."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent


def asset_path(name: str) -> Path:
    """Path of a shipped module, e.g. `asset_path("wordcount.wasm")`."""
    path = ASSETS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"no asset {name!r} in {ASSETS_DIR}")
    return path
