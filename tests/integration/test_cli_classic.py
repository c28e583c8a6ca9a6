"""The documented CLI as users type it: every classic verb (`create`, `list`, `describe`,
`logs`, `get`, `cancel`, `version`) and the run flags of `wasm run`/`docker run`, each run as
a subprocess against real `bacalhau serve` processes, checking what it prints and what it
did on the node (jobs, executions, files).

- one hybrid node serves the single-node tests (WASM assets keep them fast);
- a three-node network (one hybrid and two compute-only processes with labels) shows that
  `-s` selects only matching nodes and that `--target all` runs on every matching node;
- `tests/cli_classic_script.sh`, a bash script written against the classic verbs only, runs
  unchanged against a node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ASSETS, REPO, ServeProcess, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]

TERMINAL = {"Completed", "Failed", "Stopped"}
ACTIVE = {5, 6}  # ExecutionStateType BID_ACCEPTED (the orchestrator's view) or RUNNING
IMAGE = "bacalhau-py/test:busybox"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = ServeProcess(data_dir=tmp_path_factory.mktemp("classic") / "node")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def job_of(server: ServeProcess, job_id: str) -> dict[str, Any]:
    status, body = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")
    assert status == 200, body
    return body["Job"]


def executions_of(server: ServeProcess, job_id: str) -> list[dict[str, Any]]:
    status, body = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200, body
    return body["Items"]


def wait_state(server: ServeProcess, job_id: str, timeout: float = 60.0) -> str:
    return wait_until(
        lambda: (s := job_of(server, job_id)["State"]["StateType"]) in TERMINAL and s,
        timeout, what=f"job {job_id} to end")


def wait_running(server: ServeProcess, job_id: str) -> None:
    wait_until(lambda: any(e["ComputeState"]["StateType"] in ACTIVE
                           for e in executions_of(server, job_id)),
               30, what=f"an execution of {job_id} to run")


def job_ids(server: ServeProcess) -> set[str]:
    status, body = server.api("GET", "/api/v1/orchestrator/jobs?limit=1000")
    assert status == 200, body
    return {j["ID"] for j in body["Items"]}


# ---------------------------------------------------------------- single node


def test_create_from_yaml_on_stdin_then_list_describe_logs_get(node: ServeProcess,
                                                             tmp_path: Path) -> None:
    text = "classic verbs\nstill work\n"
    spec = yaml.safe_dump(wordcount_job(text))
    created = ok(node.cli("create", "--wait", "--id-only", input=spec, timeout=90))
    job_id = created.stdout.strip()
    assert job_id.startswith("j-") and "\n" not in job_id
    assert job_of(node, job_id)["State"]["StateType"] == "Completed"

    listed = ok(node.cli("list", "--limit", "1000"))
    assert job_id[:10] in listed.stdout and "Completed" in listed.stdout
    as_yaml = yaml.safe_load(ok(node.cli("list", "--limit", "1000", "--output", "yaml")).stdout)
    assert job_id in {j["ID"] for j in as_yaml}

    described = yaml.safe_load(ok(node.cli("describe", job_id)).stdout)  # YAML by default
    assert described["Job"]["ID"] == job_id
    assert described["Job"]["State"]["StateType"] == "Completed"
    assert described["Executions"]["Items"][0]["RunOutput"]["Stdout"] == expected_count(text)

    assert ok(node.cli("logs", job_id)).stdout == expected_count(text)

    executions = json.loads(ok(node.cli("job", "executions", job_id, "--output", "json")).stdout)
    assert [e["NodeID"] for e in executions] == [node.node_id]
    history = json.loads(ok(node.cli("job", "history", job_id, "--event-type", "job",
                                     "--output", "json")).stdout)
    assert history and {h["Type"] for h in history} == {"JobLevel"}
    exec_only = json.loads(ok(node.cli("job", "history", job_id, "--event-type", "execution",
                                       "--execution-id", executions[0]["ID"],
                                       "--output", "json")).stdout)
    assert exec_only and {h["ExecutionID"] for h in exec_only} == {executions[0]["ID"]}

    out = tmp_path / "got"
    got = ok(node.cli("get", job_id, "--output-dir", str(out), "--download-timeout-secs", "1m"))
    assert str(out) in got.stdout
    assert (out / "outputs" / "count.txt").read_text() == expected_count(text)
    assert (out / "stdout").read_text() == expected_count(text)


def test_dry_run_prints_the_job_and_submits_nothing(node: ServeProcess) -> None:
    before = job_ids(node)
    shown = ok(node.cli("wasm", "run", "--dry-run", "-l", "dry=run", str(ASSETS / "probe.wasm"),
                        "a", "b"))
    job = yaml.safe_load(shown.stdout)
    assert job["Labels"] == {"dry": "run"}
    assert job["Tasks"][0]["Engine"]["Params"]["Parameters"] == ["a", "b"]
    assert job_ids(node) == before


def test_download_output_dir_lands_the_files(node: ServeProcess, tmp_path: Path) -> None:
    text = "one two\nthree\n"
    (tmp_path / "input.txt").write_text(text)
    out = tmp_path / "results"
    run = ok(node.cli(
        "wasm", "run", "--download", "--output-dir", str(out), "--node-details",
        "-i", f"{tmp_path / 'input.txt'}:/inputs/input.txt", str(ASSETS / "wordcount.wasm"),
        timeout=90))
    assert "Nodes" in run.stdout and node.node_id in run.stdout
    assert (out / "outputs" / "count.txt").read_text() == expected_count(text)
    assert (out / "exitCode").read_text().strip() == "0"


def test_cancel_stops_a_running_job(node: ServeProcess) -> None:
    submitted = ok(node.cli("wasm", "run", "--wait=false", "--id-only",
                            str(ASSETS / "loop.wasm")))
    job_id = submitted.stdout.strip()
    wait_running(node, job_id)
    cancelled = ok(node.cli("cancel", job_id))
    assert job_id in cancelled.stdout
    assert wait_state(node, job_id) == "Stopped"
    assert all(e["DesiredState"]["StateType"] == 2 for e in executions_of(node, job_id))


def test_logs_follow_a_job_to_its_end(node: ServeProcess) -> None:
    submitted = ok(node.cli("wasm", "run", "--wait=false", "--id-only",
                            str(ASSETS / "sleep.wasm"), "1500"))
    job_id = submitted.stdout.strip()
    wait_until(lambda: executions_of(node, job_id), 30, what="an execution")
    followed = ok(node.cli("logs", "-f", job_id, timeout=60))
    assert followed.stdout == "slept\n"  # printed after the wait: the stream ran to the end
    assert wait_state(node, job_id, 15) == "Completed"


def test_wasm_run_follow_streams_the_logs(node: ServeProcess) -> None:
    run = ok(node.cli("wasm", "run", "-f", "-g", "20", str(ASSETS / "probe.wasm"),
                      "hello-follow", timeout=60))
    assert "hello-follow" in run.stdout


def test_gpu_on_a_node_without_one_is_not_scheduled_and_says_why(node: ServeProcess) -> None:
    run = node.cli("wasm", "run", "--gpu", "1", str(ASSETS / "probe.wasm"), timeout=60)
    assert run.returncode == 1
    assert "job requires more GPU (1) than the maximum available (0)" in run.stderr


def test_version_prints_client_and_server(node: ServeProcess) -> None:
    shown = ok(node.cli("version"))
    header, row = shown.stdout.splitlines()[:2]
    assert header.split() == ["CLIENT", "SERVER"]
    assert len(row.split()) == 2 and row.split()[0].startswith("v")
    alone = subprocess.run([sys.executable, "-m", "bacalhau", "--api-port", "1", "version"],
                           capture_output=True, text=True, timeout=30)
    assert alone.returncode == 0
    assert alone.stdout.split()[0] == "CLIENT" and "SERVER" not in alone.stdout
    assert alone.stderr.startswith("No server version:")


def _docker_ready() -> str:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"image {IMAGE} not built (scripts/build_test_image.sh)"
    return ""


def test_docker_run_with_the_classic_flags(node: ServeProcess, tmp_path: Path) -> None:
    if reason := _docker_ready():
        pytest.skip(f"docker run needs a Docker engine: {reason}")
    out = tmp_path / "out"
    run = ok(node.cli(
        "docker", "run", "--concurrency", "1", "-e", "WHO=classic", "-w", "/tmp",
        "--timeout", "60", "--download", "--output-dir", str(out), IMAGE, "--",
        "sh", "-c", 'echo "$WHO $(pwd)" > /outputs/who.txt; echo done', timeout=180))
    assert "Job completed" in run.stdout
    assert (out / "outputs" / "who.txt").read_text() == "classic /tmp\n"
    assert (out / "stdout").read_text() == "done\n"


# ---------------------------------------------------------------- three labelled nodes


def _labels(pairs: str) -> str:
    """`-c Labels=a=b,c=d`, the form users type."""
    return "Labels=" + pairs


class LabelledNetwork:
    """A hybrid node (zone=eu, tier=gold) and compute-only processes eu/silver and us/gold."""

    def __init__(self, base: Path) -> None:
        self.hybrid = ServeProcess(data_dir=base / "hybrid",
                                   extra_args=["-c", _labels("zone=eu,tier=gold")])
        self.computes: list[ServeProcess] = []
        self.base = base

    def start(self) -> None:
        self.hybrid.start()
        peers = ",".join(self.hybrid.addresses())
        for name, labels in (("eu-silver", "zone=eu,tier=silver"),
                             ("us-gold", "zone=us,tier=gold")):
            compute = ServeProcess(
                data_dir=self.base / name, roles=("--compute",),
                extra_args=["--peers", peers, "-c", _labels(labels),
                            "-c", "Compute.Heartbeat.Interval=0.5s"])
            self.computes.append(compute)
            compute.start()
        wanted = {self.hybrid.node_id, *(c.node_id for c in self.computes)}

        def all_connected() -> bool:
            _, body = self.hybrid.api("GET", "/api/v1/orchestrator/nodes?limit=100")
            seen = {n["Info"]["NodeID"] for n in body["Nodes"]
                    if n["ConnectionState"]["Status"] == "CONNECTED"}
            return wanted <= seen

        wait_until(all_connected, 60, what="three connected compute nodes")

    def stop(self) -> None:
        for proc in [*reversed(self.computes), self.hybrid]:
            proc.stop()

    def ids(self, *names: str) -> set[str]:
        by_name = {"eu-gold": self.hybrid, "eu-silver": self.computes[0],
                   "us-gold": self.computes[1]}
        return {by_name[n].node_id for n in names}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelledNetwork]:
    network = LabelledNetwork(tmp_path_factory.mktemp("labelled"))
    try:
        network.start()
        yield network
    finally:
        network.stop()


def _run_on(network: LabelledNetwork, *flags: str) -> tuple[str, set[str]]:
    run = ok(network.hybrid.cli("wasm", "run", "--id-only", *flags,
                                str(ASSETS / "probe.wasm"), timeout=90))
    job_id = run.stdout.strip()
    assert job_of(network.hybrid, job_id)["State"]["StateType"] == "Completed"
    items = executions_of(network.hybrid, job_id)
    return job_id, {e["NodeID"] for e in items if e["ComputeState"]["StateType"] == 9}


def test_selector_picks_only_matching_nodes(labelled: LabelledNetwork) -> None:
    _, nodes = _run_on(labelled, "--concurrency", "2", "-s", "zone=eu")
    assert nodes == labelled.ids("eu-gold", "eu-silver")
    _, nodes = _run_on(labelled, "-s", "zone==eu,tier!=gold")
    assert nodes == labelled.ids("eu-silver")
    refused = labelled.hybrid.cli("wasm", "run", "-s", "zone=us,tier=silver",
                                  str(ASSETS / "probe.wasm"), timeout=60)
    assert refused.returncode == 1 and "not enough nodes" in refused.stderr


def test_target_all_runs_on_every_matching_node(labelled: LabelledNetwork) -> None:
    job_id, nodes = _run_on(labelled, "--target", "all", "-s", "tier=gold")
    assert job_of(labelled.hybrid, job_id)["Type"] == "ops"
    assert nodes == labelled.ids("eu-gold", "us-gold")
    _, nodes = _run_on(labelled, "--target", "all")
    assert nodes == labelled.ids("eu-gold", "eu-silver", "us-gold")


# ---------------------------------------------------------------- a user's shell script


def test_classic_shell_script_runs_unchanged(node: ServeProcess, tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    env = node.env()
    # `bacalhau` on PATH is this checkout's console script (the venv's bin folder)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    assert shutil.which("bacalhau", path=env["PATH"]), "the bacalhau console script"
    run = subprocess.run([bash, str(REPO / "tests" / "cli_classic_script.sh"), str(ASSETS)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert run.stdout.rstrip().endswith("classic script: all checks passed")
    summary = json.loads(run.stdout.strip().splitlines()[-2])
    assert job_of(node, summary["done"])["State"]["StateType"] == "Completed"
    assert job_of(node, summary["cancelled"])["State"]["StateType"] == "Stopped"
