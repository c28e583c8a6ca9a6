"""CLI wall time of `bacalhau docker run --wait <test image> true` beside `docker run --rm
<test image> true` (issue 15: at most 1.25x), for the `docker` scenario (bench/scenarios.py).

Each sample is one process from start to exit, timed by this process (what a user waits for at
the prompt): the bacalhau CLI submits to a running `bacalhau serve` (its API port in the
environment), waits for the job and prints its output; `docker run --rm` creates, starts and
removes a container of the same image. The two alternate, so both see the same machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from bacalhau.executors.docker import TEST_IMAGE
from bench.cli_start import bacalhau_cli, timed

TARGET = 1.25
"""`bacalhau docker run --wait` p50 at most this many times `docker run --rm`'s (issue 15)."""


def commands() -> dict[str, list[str]]:
    return {"bacalhau docker run --wait": [*bacalhau_cli(), "docker", "run", "--wait", TEST_IMAGE,
                                           "--", "true"],
            "docker run --rm": ["docker", "run", "--rm", TEST_IMAGE, "true"]}


def measure(port: int, work: Path, n: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of `n` runs of each command (after `warmup` runs each), alternating."""
    env = dict(os.environ, BACALHAU_API_PORT=str(port), BACALHAU_API_HOST="127.0.0.1",
               BACALHAU_DIR=str(work / "cli"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
    cmds = commands()
    samples: dict[str, list[float]] = {name: [] for name in cmds}
    for i in range(warmup + n):
        for name, cmd in cmds.items():
            elapsed = timed(cmd, env)
            if i >= warmup:
                samples[name].append(elapsed)
    return samples
