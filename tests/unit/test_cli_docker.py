"""`bacalhau docker run` builds the job JSON of the reference (§4.1 docker params, §7 flags)
and submits exactly that; it shares the job/task/runtime flags with `wasm run`."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli
from bacalhau.cli.spec import build_docker_job, env_items
from tests.unit.test_cli_job import Pages
from tests.unit.test_cli_support import (
    EXEC_ID,
    JOB_ID,
    FakeBacalhau,
    Reply,
    fake_api,
    history_item,
    wire_job,
)

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"
IMAGE = "bacalhau-py/test:busybox"


def run_cli(server: FakeBacalhau | None, *args: str) -> Result:
    port = str(server.port) if server else "1"
    return CliRunner().invoke(cli, ["--api-port", port, *args])


def accept(server: FakeBacalhau) -> None:
    server.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})


def submitted(server: FakeBacalhau) -> dict[str, Any]:
    (put,) = server.calls("PUT", JOBS)
    assert put.body["Force"] is False
    return put.body["Job"]


def engine(**params: Any) -> dict[str, Any]:
    """Docker engine params as the CLI writes them: every key, empty ones included."""
    base: dict[str, Any] = {
        "Image": IMAGE,
        "Entrypoint": [],
        "Parameters": [],
        "EnvironmentVariables": [],
        "WorkingDirectory": "",
    }
    return {"Type": "docker", "Params": {**base, **params}}


def test_minimal_docker_run_job(fake_api: FakeBacalhau) -> None:
    accept(fake_api)
    result = run_cli(fake_api, "docker", "run", "--no-wait", IMAGE, "echo", "hello")
    assert result.exit_code == 0, result.output
    assert submitted(fake_api) == {
        "Namespace": "default",
        "Type": "batch",
        "Count": 1,
        "Tasks": [
            {
                "Name": "main",
                "Engine": engine(Parameters=["echo", "hello"]),
                "Publisher": {"Type": "local"},
                "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
            }
        ],
    }
    assert f"Job successfully submitted. Job ID: {JOB_ID}" in result.output
    assert f"bacalhau job describe {JOB_ID}" in result.output


def test_every_flag_lands_in_its_field(fake_api: FakeBacalhau) -> None:
    accept(fake_api)
    result = run_cli(
        fake_api,
        "docker",
        "run",
        "--no-wait",
        "--name", "resize",
        "--namespace", "media",
        "--priority", "5",
        "--count", "3",
        "-l", "team=data",
        "--constraints", "zone in (eu,us),gpu!=none",
        "--task-name", "resize-task",
        "-e", "A=1,B=2",
        "-e", "GREETING=hi,there",
        "--entrypoint", "/bin/sh",
        "--entrypoint=-c",  # a bare `-c` would be the global config flag
        "-w", "/work",
        "-i", "https://example.com/in.txt:/inputs/in.txt",
        "-o", "outputs:/outputs",
        "-o", "logs=/var/log/app",
        "-p", "local",
        "--cpu", "500m",
        "--memory", "64Mb",
        "--disk", "1Gb",
        "--gpu", "1",
        "--network", "http",
        "--domain", "example.com",
        "--domain", ".pypi.org",
        "--timeout", "300",
        "--queue-timeout", "60",
        "ubuntu@sha256:35b4f89ec2ee42e7e12db3d107fe6a487137650a2af379bbd49165a1494246ea",
        "--",
        "convert -resize 100x100 /inputs/in.txt /outputs/out.txt",
    )
    assert result.exit_code == 0, result.output
    assert submitted(fake_api) == {
        "Name": "resize",
        "Namespace": "media",
        "Type": "batch",
        "Count": 3,
        "Priority": 5,
        "Constraints": [
            {"Key": "zone", "Operator": "in", "Values": ["eu", "us"]},
            {"Key": "gpu", "Operator": "!=", "Values": ["none"]},
        ],
        "Labels": {"team": "data"},
        "Tasks": [
            {
                "Name": "resize-task",
                "Engine": {
                    "Type": "docker",
                    "Params": {
                        "Image": "ubuntu@sha256:35b4f89ec2ee42e7e12db3d107fe6a487137650a2af3"
                        "79bbd49165a1494246ea",
                        "Entrypoint": ["/bin/sh", "-c"],
                        "Parameters": ["convert -resize 100x100 /inputs/in.txt /outputs/out.txt"],
                        "EnvironmentVariables": ["A=1", "B=2", "GREETING=hi,there"],
                        "WorkingDirectory": "/work",
                    },
                },
                "Publisher": {"Type": "local"},
                "InputSources": [
                    {
                        "Source": {
                            "Type": "urlDownload",
                            "Params": {"URL": "https://example.com/in.txt"},
                        },
                        "Alias": "https://example.com/in.txt",
                        "Target": "/inputs/in.txt",
                    }
                ],
                "ResultPaths": [
                    {"Name": "outputs", "Path": "/outputs"},
                    {"Name": "logs", "Path": "/var/log/app"},
                ],
                "Resources": {"CPU": "500m", "Memory": "64Mb", "Disk": "1Gb", "GPU": "1"},
                "Network": {"Type": "HTTP", "Domains": ["example.com", ".pypi.org"]},
                "Timeouts": {"ExecutionTimeout": 300, "QueueTimeout": 60},
            }
        ],
    }


@pytest.mark.parametrize(
    ("flags", "job_type", "count"),
    [
        (["--target", "all"], "ops", None),
        (["--type", "daemon"], "daemon", None),
        (["--target", "all", "--type", "daemon"], "daemon", None),
        (["--type", "service", "--count", "2"], "service", 2),
        (["--type", "OPS"], "ops", None),
        (["--count", "4"], "batch", 4),
    ],
)
def test_job_type_from_target_and_type(
    fake_api: FakeBacalhau, flags: list[str], job_type: str, count: int | None
) -> None:
    accept(fake_api)
    result = run_cli(fake_api, "docker", "run", "--no-wait", *flags, IMAGE)
    assert result.exit_code == 0, result.output
    job = submitted(fake_api)
    assert job["Type"] == job_type
    assert job.get("Count") == count


@pytest.mark.parametrize(
    ("network", "wire"),
    [("none", "None"), ("host", "Host"), ("bridge", "Bridge"), ("default", "Default"),
     ("full", "Full"), ("HTTP", "HTTP")],
)
def test_network_types(network: str, wire: str) -> None:
    result = run_cli(None, "docker", "run", "--dry-run", "--network", network, IMAGE)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["Tasks"][0]["Network"] == {"Type": wire}


def test_no_network_flag_leaves_the_executor_default() -> None:
    job = build_docker_job(IMAGE, [])
    assert "Network" not in job["Tasks"][0]


def test_dry_run_prints_yaml_and_submits_nothing(fake_api: FakeBacalhau) -> None:
    result = run_cli(
        fake_api, "docker", "run", "--dry-run", "--name", "hello", IMAGE, "echo", "hi"
    )
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output)
    assert spec == {
        "Name": "hello",
        "Namespace": "default",
        "Type": "batch",
        "Count": 1,
        "Tasks": [
            {
                "Name": "main",
                "Engine": engine(Parameters=["echo", "hi"]),
                "Publisher": {"Type": "local"},
                "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
            }
        ],
    }
    assert fake_api.requests == []


def test_dry_run_flag_may_follow_the_command() -> None:
    result = run_cli(None, "docker", "run", IMAGE, "echo hello", "--dry-run")
    assert result.exit_code == 0, result.output
    params = yaml.safe_load(result.output)["Tasks"][0]["Engine"]["Params"]
    assert params["Parameters"] == ["echo hello"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-w", "./myDir", IMAGE], "'./myDir' is not an absolute path"),
        (["-w", "http://foo.com", IMAGE], "is not an absolute path"),
        (["--domain", "example.com", IMAGE], "add --network http"),
        (["--network", "none", "--domain", "x.org", IMAGE], "add --network http"),
        (["-e", "BACALHAU_JOB_ID=x", IMAGE], "reserved"),
        (["-e", "NOVALUE", IMAGE], "'NOVALUE' is not of the form NAME=VALUE"),
        (["--target", "all", "--type", "service", IMAGE], "does not go with --type service"),
        (["-o", "outputs", IMAGE], "is not NAME:/absolute/path"),
        (["--type", "daemon", "--download", IMAGE], "daemon jobs keep running"),
        (["--no-wait", "--download", IMAGE], "--download needs --wait"),
        ([IMAGE, "-xoo"], "No such option '-x'"),
        (["   "], "must not be empty"),
    ],
)
def test_bad_flags_are_refused_before_anything_is_sent(
    fake_api: FakeBacalhau, args: list[str], message: str
) -> None:
    result = run_cli(fake_api, "docker", "run", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert fake_api.requests == []


def test_env_items_split_on_commas_only_between_variables() -> None:
    assert env_items(["A=1,B=2"]) == [("A", "1"), ("B", "2")]
    assert env_items(["MSG=a,b", "C=x=y"]) == [("MSG", "a,b"), ("C", "x=y")]
    assert env_items(["EMPTY="]) == [("EMPTY", "")]


def test_id_only_waits_silently_and_prints_the_id(fake_api: FakeBacalhau) -> None:
    accept(fake_api)
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", {"Job": wire_job("Completed")})
    fake_api.on(
        "GET",
        f"{JOBS}/{JOB_ID}/history",
        Pages(([history_item(1, "Submission", "Job submitted")], "")),
    )
    result = run_cli(fake_api, "docker", "run", "--id-only", IMAGE, "true")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{JOB_ID}\n"


def test_wait_on_a_daemon_job_returns_after_its_first_execution_event(
    fake_api: FakeBacalhau,
) -> None:
    accept(fake_api)
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", {"Job": wire_job("Running", Type="daemon")})
    history = Pages(
        ([history_item(1, "Submission", "Job submitted")], "t1"),
        ([history_item(2, "Scheduling", "Requested execution on n-1", exec_id=EXEC_ID)], "t2"),
        ([], "t2"),  # a daemon job's history never ends
    )
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/history", history)
    result = run_cli(fake_api, "docker", "run", "--type", "daemon", IMAGE, "sleep", "1000")
    assert result.exit_code == 0, result.output
    assert "Requested execution on n-1" in result.output
    assert history.tokens_seen == [None, "t1"]


def test_follow_streams_the_logs(fake_api: FakeBacalhau) -> None:
    accept(fake_api)
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", {"Job": wire_job("Completed")})
    frames = [{"value": {"Type": 1, "Line": "hello\n"}}]
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/logs", Reply(ws_frames=frames))
    result = run_cli(fake_api, "docker", "run", "-f", IMAGE, "echo", "hello")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("hello\n")
    (logs,) = fake_api.calls("GET", f"{JOBS}/{JOB_ID}/logs")
    assert logs.param("follow") == "true"


def test_wasm_run_shares_the_task_flags(tmp_path: Any) -> None:
    """The shared builders give wasm run the same task flags (here --gpu, --network)."""
    module = tmp_path / "m.wasm"
    module.write_bytes(b"\x00asm\x01\x00\x00\x00")
    result = run_cli(
        None, "wasm", "run", "--dry-run", "--gpu", "1", "--network", "none",
        "--type", "service", str(module),
    )
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output)
    assert spec["Type"] == "service" and spec["Count"] == 1
    assert spec["Tasks"][0]["Resources"] == {"GPU": "1"}
    assert spec["Tasks"][0]["Network"] == {"Type": "None"}
