"""`python -m bench faults`: the fault matrix (tests/faults/scenarios.py) on network-namespace
hosts, each fault with the checker's workload: fault x workload -> submitted, completed,
duplicates, lost, time to recover. Needs root (network namespaces); writes `faults.json`
(one entry per fault with the checker's full report) and `faults.md` (the table for the
README's Reliability section).

`--quick` runs the CI sizes (8 batch jobs, 8 s of loss); the full run 30 batch jobs plus a
service and a daemon job per fault and 2 minutes of 5% loss. Recovery time is from the heal
(or the restart, for crashes) to every batch job terminal and the long-running jobs back at
their count. The baseline of each row is the same workload with no fault, in the same run.
Columns: submitted (every submit, refused ones included: a requester that is down refuses
them, and the workload submits them again once it is back), accepted, completed (batch jobs;
the service and daemon never complete, the checker holds them to their count), duplicates
(Completed executions beyond one per Count=1 job), lost (accepted batch jobs not Completed).
"""

from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report
from tests.faults import scenarios
from tests.faults.bed import Bed, available
from tests.faults.checker import Checker
from tests.faults.cluster import start_cluster, wait_connected

WORKLOAD = "batch wasm (inline, local publish)"


def _no_fault(bed: Bed, sizes: scenarios.Sizes, scratch: Path) -> dict[str, Any]:
    cluster = start_cluster(bed, 2)
    wait_connected(cluster, cluster.computes)
    checker = Checker(bed, cluster.requester)
    if sizes.long_running:
        checker.submit_long_running()
    started = time.monotonic()
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    checker.wait_recovered(started, sizes.recover_bound)
    doc = checker.report(scratch)
    doc["fault"] = "none (baseline)"
    return doc


def table(entries: list[dict[str, Any]]) -> list[str]:
    head = ["fault", "workload", "submitted", "accepted", "completed", "duplicates", "lost",
            "time to recover (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        if "error" in e:
            lines.append(f"| {e['fault']} | {WORKLOAD} | - | - | - | - | - | failed: "
                         f"{e['error'][:80]} |")
            continue
        workload = WORKLOAD + (" + service + daemon" if e.get("long_running") else "")
        lines.append(f"| {e['fault']} | {workload} | {e['submitted']} | {e['accepted']} | "
                     f"{e['completed']} | {e['duplicates']} | {e['lost']} | "
                     f"{e['recovery_s']:.1f} |")
    return lines


def run(quick: bool, out: Path, only: list[str] | None = None) -> dict[str, Any]:
    why = available()
    if why:
        raise RuntimeError(f"the fault bench needs network namespaces: {why}")
    sizes = scenarios.Sizes.quick() if quick else scenarios.Sizes.full()
    names = only or list(scenarios.MATRIX)
    entries: list[dict[str, Any]] = []
    started = time.monotonic()
    plan: list[tuple[str, Any]] = [("baseline", _no_fault)]
    plan += [(n, scenarios.MATRIX[n]) for n in names]
    for name, fn in plan:
        print(f"  fault {name} ...", flush=True)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"bench-faults-{name.replace(':', '-')}-") as d:
            bed = Bed(Path(d))
            try:
                entry = fn(bed, sizes, Path(d))
            except Exception as exc:  # one broken fault must not lose the others
                traceback.print_exc()
                entry = {"fault": name, "error": str(exc)}
            finally:
                bed.close()
        entry["long_running"] = sizes.long_running
        entry["seconds"] = round(time.monotonic() - t0, 1)
        entries.append(entry)
        print(f"    {entry}", flush=True)
    lines = table(entries)
    (out / "faults.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "faults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    ok = [e for e in entries[1:] if "error" not in e]
    base = entries[0].get("recovery_s") if "error" not in entries[0] else None
    rows = [report.Row(f"{e['fault']}: lost + duplicates", e["lost"] + e["duplicates"], "jobs",
                       "no fault", 0.0, note="must be 0") for e in ok]
    rows += [report.Row(f"{e['fault']}: time to recover", e["recovery_s"], "s",
                        "no fault: time to finish", base) for e in ok]
    summary = {"faults": len(entries) - 1, "failed": [e["fault"] for e in entries
                                                       if "error" in e],
               "lost": sum(e.get("lost", 0) for e in ok),
               "duplicates": sum(e.get("duplicates", 0) for e in ok)}
    return report.result("faults", settings={"quick": quick, "sizes": sizes.__dict__,
                                             "faults": names},
                         samples={"entries": entries}, summary=summary, rows=rows,
                         seconds=time.monotonic() - started)
