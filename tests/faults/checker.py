"""A workload and a checker of invariants for fault scenarios (Jepsen-style: record every
submit and every final state, then check the history).

The workload submits, through the requester's API from the bed's client namespace:

- batch WASM jobs with inline inputs, published by the local publisher (`wordcount` jobs,
  whose stdout is known in advance, and `sleep` jobs that keep nodes busy while faults hit);
- one service job (Count 1) and one daemon job, both long sleeps.

S3 inputs and publishing are not part of this workload: the moto test server listens on the
machine's loopback, which no host namespace can reach (the bed never connects a namespace to
the machine's own interfaces); tests/integration/test_s3_jobs.py covers S3 across restarts.

`Checker.report()` checks, and returns as figures:

- every accepted job reached a terminal state within the bound after healing (`lost` counts
  those that did not, and every batch job that ended other than Completed: a job failed by the
  fault itself is lost);
- no Count=1 batch job has two Completed executions (`duplicates`);
- every Completed result's CID verifies (downloaded from the publishing host, checked with
  `bacalhau.cli.results.verify_download`, the code `job get` uses) (`bad_cids`);
- the API answered during the faults (`api_failures`, from `probe()` calls);
- job, execution and node IDs survive restarts (`ids_lost`);
- service and daemon jobs are back at their count (`long_running_short`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.bed import Bed, Host
from tests.jobspecs import expected_count, wordcount_job

TERMINAL = {"Completed", "Failed", "Stopped"}
RUNNING, COMPLETED, FAILED = 5, 9, 10  # execution compute states
DESIRED_RUNNING = 1
QUEUE_TIMEOUT = 600  # s: batch jobs wait this long for a free node (see submit_batch)


def sleep_job(ms: int, job_type: str = "batch") -> dict[str, Any]:
    job = wordcount_job(module="sleep.wasm", params=[str(ms)],
                        timeout=600 if job_type == "batch" else 0)
    job["Tasks"][0]["InputSources"] = job["Tasks"][0]["InputSources"][:1]  # the module only
    job["Type"] = job_type
    if job_type == "daemon":
        job["Count"] = 0
    if job_type != "batch":
        job["Tasks"][0]["Publisher"] = {}
        job["Tasks"][0]["ResultPaths"] = []
    return job


@dataclass
class Submitted:
    job_id: str
    kind: str  # "wordcount", "sleep", "service", "daemon"
    expect_stdout: str = ""
    final: str = ""


@dataclass
class Checker:
    """Submits the workload to `requester`, probes the API, and checks the history."""

    bed: Bed
    requester: Host
    jobs: list[Submitted] = field(default_factory=list)
    refused: int = 0  # submits the API did not accept (not counted as accepted jobs)
    probes: int = 0
    api_failures: list[str] = field(default_factory=list)
    recovery_s: float = 0.0
    _ids: dict[str, set[str]] = field(default_factory=dict)
    _node_ids: dict[str, str] = field(default_factory=dict)
    _seq: int = 0

    # -- API ------------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, doc = self.bed.api(self.requester, method, path, body)
        assert status == 200, f"{method} {path}: {status} {doc}"
        return doc

    def submit(self, job: dict[str, Any], kind: str, expect_stdout: str = "") -> str | None:
        try:
            status, doc = self.bed.api(self.requester, "PUT", "/api/v1/orchestrator/jobs",
                                       {"Job": job}, timeout=10)
        except Exception:
            status, doc = 0, None
        if status != 200:
            self.refused += 1
            return None
        self.jobs.append(Submitted(doc["JobID"], kind, expect_stdout))
        return str(doc["JobID"])

    def submit_batch(self, n: int, sleep_ms: int = 1000) -> None:
        """`n` batch jobs, alternately a wordcount (inline text) and a sleep of `sleep_ms`,
        each with a QueueTimeout: the workload may exceed what the nodes hold at once, and a
        job without one fails at placement when every node is busy, fault or not (30 submits
        spread over 9 s on two idle nodes fail one that way), which is admission, not a
        fault's doing."""
        for _ in range(n):
            self._seq += 1
            if self._seq % 2:
                text = f"job {self._seq} of the fault workload\n"
                job, kind, out = wordcount_job(text), "wordcount", expected_count(text)
            else:
                job, kind, out = sleep_job(sleep_ms), "sleep", "slept\n"
            job["Tasks"][0].setdefault("Timeouts", {})["QueueTimeout"] = QUEUE_TIMEOUT
            self.submit(job, kind, out)

    def submit_long_running(self) -> None:
        self.submit(sleep_job(3_600_000, "service"), "service")
        self.submit(sleep_job(3_600_000, "daemon"), "daemon")

    def probe(self) -> bool:
        """One API call during a fault; a failure is recorded."""
        self.probes += 1
        try:
            status, _ = self.bed.api(self.requester, "GET", "/api/v1/orchestrator/jobs?limit=1",
                                     timeout=5)
            if status == 200:
                return True
            self.api_failures.append(f"status {status}")
        except Exception as exc:
            self.api_failures.append(repr(exc))
        return False

    def state(self, job_id: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"]["State"]

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")["Items"]

    def connected_computes(self) -> set[str]:
        nodes = self.api("GET", "/api/v1/orchestrator/nodes")["Nodes"]
        return {n["Info"]["NodeID"] for n in nodes
                if n.get("ConnectionState", {}).get("Status") == "CONNECTED"
                and "Compute" in str(n["Info"].get("NodeType", ""))}

    def live_computes(self) -> set[str]:
        """Node IDs of the compute hosts whose process runs (crashed ones excluded)."""
        return {h.node_id for h in self.bed.hosts.values()
                if "--compute" in h.roles and h.alive() and h.node_id}

    # -- IDs across restarts ------------------------------------------------------------------

    def remember_ids(self, hosts: list[Host]) -> None:
        """Record job, execution and node IDs now, to compare after restarts."""
        for job in self.jobs:
            try:
                self._ids[job.job_id] = {e["ID"] for e in self.executions(job.job_id)}
            except Exception:  # the requester is down (crashed): the job ID alone
                self._ids[job.job_id] = set()
        self._node_ids = {h.name: h.node_id for h in hosts}

    def ids_lost(self, hosts: list[Host]) -> list[str]:
        lost: list[str] = []
        for job_id, before in self._ids.items():
            status, doc = self.bed.api(self.requester, "GET",
                                       f"/api/v1/orchestrator/jobs/{job_id}/executions")
            if status != 200:
                lost.append(f"job {job_id}")
                continue
            now = {e["ID"] for e in doc["Items"]}
            lost += [f"execution {i}" for i in sorted(before - now)]
        for host in hosts:
            was = self._node_ids.get(host.name)
            if was and host.node_id != was:
                lost.append(f"node {host.name}: {was} -> {host.node_id}")
        return lost

    # -- after healing --------------------------------------------------------------------------

    def wait_recovered(self, healed_at: float, bound: float) -> float:
        """Wait until every batch job is terminal and long-running jobs are at their count;
        returns (and records) the seconds since `healed_at`. Times out after `bound`."""
        def done() -> bool:
            for job in self.jobs:
                if job.final:
                    continue
                if job.kind in ("service", "daemon"):
                    continue
                state = self.state(job.job_id)["StateType"]
                if state not in TERMINAL:
                    return False
                job.final = state
            if not self.live_computes() <= self.connected_computes():
                return False  # a node that lives is back in the network
            return not self.long_running_short()

        self.bed.wait(done, bound, "every job to finish and long-running jobs at their count",
                      interval=0.2)
        self.recovery_s = max(0.0, time.monotonic() - healed_at)
        return self.recovery_s

    def long_running_short(self) -> list[str]:
        """Service/daemon jobs not at their count: (service) Count running executions,
        (daemon) one per connected compute node."""
        short: list[str] = []
        computes = None
        for job in self.jobs:
            if job.kind not in ("service", "daemon"):
                continue
            running = {e["NodeID"] for e in self.executions(job.job_id)
                       if e["DesiredState"]["StateType"] == DESIRED_RUNNING
                       and e["ComputeState"]["StateType"] == RUNNING}
            if job.kind == "service" and len(running) < 1:
                short.append(f"service {job.job_id}: {len(running)} of 1 running")
            if job.kind == "daemon":
                computes = self.live_computes() if computes is None else computes
                if not computes <= running:
                    short.append(f"daemon {job.job_id}: not on {sorted(computes - running)}")
        return short

    def report(self, scratch: Path) -> dict[str, Any]:
        """The figures of the checks (all but `submitted`/`completed`/`recovery_s` must be 0)."""
        from bacalhau.cli.results import ResultMismatch, verify_download

        completed = lost = duplicates = 0
        bad_cids: list[str] = []
        lost_jobs: list[str] = []
        hosts = {h.ip: h for h in self.bed.hosts.values()}
        for job in self.jobs:
            if job.kind in ("service", "daemon"):
                continue
            state = self.state(job.job_id)
            final = job.final or state["StateType"]
            execs = self.executions(job.job_id)
            done = [e for e in execs if e["ComputeState"]["StateType"] == COMPLETED]
            duplicates += max(0, len(done) - 1)
            if final != "Completed" or not done:
                lost += 1
                lost_jobs.append(f"{job.job_id} {final}: {state.get('Message', '')}")
                continue
            completed += 1
            for e in done:
                stdout = (e.get("RunOutput") or {}).get("Stdout", "")
                if job.expect_stdout and stdout != job.expect_stdout:
                    bad_cids.append(f"{e['ID']}: stdout {stdout!r}")
                result = e.get("PublishedResult") or {}
                params = result.get("Params") or {}
                url, cid = params.get("URL", ""), params.get("CID", "")
                if not url or not cid:
                    bad_cids.append(f"{e['ID']}: published no URL/CID ({result})")
                    continue
                host = next((h for ip, h in hosts.items() if f"//{ip}:" in url), None)
                if host is None or not host.alive():
                    continue  # the publisher is down now: nothing to fetch from
                with tempfile.TemporaryDirectory(dir=scratch) as tmp:
                    archive = self.bed.download(url, Path(tmp) / "result.tar.gz")
                    try:
                        verify_download(archive, cid, e["ID"], Path(tmp))
                    except ResultMismatch as exc:
                        bad_cids.append(str(exc))
        return {
            "submitted": len(self.jobs) + self.refused,
            "accepted": len(self.jobs),
            "refused": self.refused,
            "completed": completed,
            "duplicates": duplicates,
            "lost": lost,
            "lost_jobs": lost_jobs,
            "bad_cids": bad_cids,
            "api_probes": self.probes,
            "api_failures": len(self.api_failures),
            "long_running_short": self.long_running_short(),
            "recovery_s": round(self.recovery_s, 2),
        }
