"""The common result format of `python -m bench`: machine info, settings, raw samples, a
summary and rows of figure / baseline / ratio / target / met; the table it prints and the PNG
plots (latency distribution, throughput over time) it draws with matplotlib's Agg backend.

A row compares one measured figure with a baseline measured in the same run:
`ratio = value / baseline_value`; a target is either `{"max": x}` (ratio must be <= x) or
`{"min": x}` (ratio must be >= x). A baseline that could not be measured (Slurm not
installed, no Docker engine) leaves `baseline_value` None and says why in `note`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


@dataclass
class Row:
    """One figure beside its same-run baseline."""

    figure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: dict[str, float] | None = None
    note: str = ""
    ratio: float | None = field(default=None, init=False)
    met: bool | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.baseline_value:
            self.ratio = self.value / self.baseline_value
        if self.target and self.ratio is not None:
            if "max" in self.target:
                self.met = self.ratio <= self.target["max"]
            else:
                self.met = self.ratio >= self.target["min"]

    def target_text(self) -> str:
        if not self.target:
            return ""
        return (f"<= {self.target['max']:g}x" if "max" in self.target
                else f">= {self.target['min']:g}x")


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                              cwd=REPO).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def create_cost_us(where: Path | None = None, n: int = 60) -> float:
    """Median microseconds to create a new empty file in a fresh directory under `where`
    (the scenarios' work dir): node data dirs create ~a dozen files and directories per job,
    and what that costs differs a lot between filesystems, and even between directories of
    one filesystem."""
    samples = []
    with tempfile.TemporaryDirectory(dir=where, prefix="bench-probe-") as tmp:
        for i in range(n):
            t0 = time.perf_counter()
            with open(os.path.join(tmp, f"f{i}"), "wb"):
                pass
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python/Rust versions, the git commit (and whether the tree
    had local changes), the load average when the run began, and the work dir with what
    creating a file there costs."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_model": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "rustc": _run(["rustc", "--version"]) or "not installed (extension prebuilt)",
        "git_commit": _run(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"])),
        "load_average": list(os.getloadavg()),
        "work_dir": tempfile.gettempdir(),
        "file_create_us": round(create_cost_us(), 1),
    }


def result(scenario: str, *, settings: dict[str, Any], samples: dict[str, Any],
           summary: dict[str, Any], rows: list[Row], seconds: float,
           machine: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "machine": machine or machine_info(),
        "settings": settings,
        "samples": samples,
        "summary": summary,
        "rows": [asdict(r) for r in rows],
        "seconds": seconds,
    }


def _finite(x: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def write(doc: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{doc['scenario']}.json"
    path.write_text(json.dumps(_finite(doc), indent=1) + "\n")
    return path


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    text = f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{text} {unit}".rstrip()


def table_lines(docs: list[dict[str, Any]], markdown: bool = False) -> list[str]:
    """The rows of every scenario: figure, value, baseline, baseline value, ratio, target,
    met (as plain text, or a Markdown table for the README)."""
    head = ["scenario", "figure", "value", "baseline", "baseline value", "ratio", "target",
            "met"]
    body = []
    for doc in docs:
        for r in doc["rows"]:
            row = Row(r["figure"], r["value"], r["unit"], r["baseline"], r["baseline_value"],
                      r["target"], r["note"])
            met = "" if row.met is None else ("yes" if row.met else "NO")
            base = row.baseline + (f" ({row.note})" if row.note and row.baseline_value is None
                                   else "")
            body.append([doc["scenario"], row.figure, _num(row.value, row.unit), base,
                         _num(row.baseline_value, row.unit),
                         "-" if row.ratio is None else f"{row.ratio:.3g}x",
                         row.target_text(), met])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in b) + " |" for b in body]
        return lines
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    widths[3] = min(widths[3], 60)
    fmt = "  ".join(f"{{:{'>' if i in (2, 4, 5) else '<'}{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*head)] + [fmt.format(*(c[:60] if i == 3 else c
                                                for i, c in enumerate(b))) for b in body]


# ------------------------------------------------------------------------------ plots


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(path: Path, title: str, series: dict[str, list[float]],
                 unit: str = "ms") -> Path:
    """A latency distribution: the empirical CDF of each series on a log x axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in series.items():
        if not values:
            continue
        xs = sorted(values)
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=f"{name} (n={len(xs)})")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency ({unit}, log scale)")
    ax.set_ylabel("fraction of samples <= x")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_timeline(path: Path, title: str, series: dict[str, list[tuple[float, float]]],
                  ylabel: str) -> Path:
    """Throughput (or any rate) over time: one line per series of (t seconds, value)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, points in series.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_bars(path: Path, title: str, bars: dict[str, float], unit: str) -> Path:
    """Figures beside baselines, for scenarios that measure single values (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(bars) + 1.5))
    names = list(bars)
    ax.barh(names, [bars[n] for n in names])
    ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def rate_timeline(times: list[float], bucket: float = 1.0) -> list[tuple[float, float]]:
    """Events per second in buckets of `bucket` seconds from event times (seconds from 0)."""
    if not times:
        return []
    counts: dict[int, int] = {}
    for t in times:
        counts[int(t // bucket)] = counts.get(int(t // bucket), 0) + 1
    last = max(counts)
    return [((i + 0.5) * bucket, counts.get(i, 0) / bucket) for i in range(last + 1)]
