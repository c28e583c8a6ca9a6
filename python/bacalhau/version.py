"""The version of this build, in the shape of Bacalhau's BuildVersionInfo."""

from __future__ import annotations

import platform
import sys
from typing import Any

MAJOR, MINOR, PATCH = 1, 9, 0
GIT_VERSION = f"v{MAJOR}.{MINOR}.{PATCH}-py0.1.0"
GIT_COMMIT = "bacalhau-py"
BUILD_DATE = "2026-11-29T00:00:00Z"


def _goarch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def build_version_info() -> dict[str, Any]:
    """`BuildVersionInfo` JSON (reference §1.4, §3.2)."""
    return {
        "Major": str(MAJOR),
        "Minor": str(MINOR),
        "GitVersion": GIT_VERSION,
        "GitCommit": GIT_COMMIT,
        "BuildDate": BUILD_DATE,
        "GOOS": sys.platform if sys.platform != "darwin" else "darwin",
        "GOARCH": _goarch(),
    }
