"""`bacalhau job ...` against a fake API: submit, progress display, describe, list, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli, hoist_global_options
from tests.unit.test_cli_support import (
    EXEC_ID,
    JOB_ID,
    NODE_ID,
    FakeBacalhau,
    Recorded,
    Reply,
    fake_api,
    history_item,
    wire_job,
)

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"
SPEC = {
    "Name": "wc",
    "Type": "batch",
    "Count": 1,
    "Labels": {"team": "data"},
    "Tasks": [
        {
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {"EntryModule": "/wasm/main.wasm"}},
            "Publisher": {"Type": "local"},
            "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
        }
    ],
}


def run_cli(server: FakeBacalhau | None, *args: str, input: str | None = None) -> Result:
    port = str(server.port) if server else "1"
    return CliRunner().invoke(cli, ["--api-port", port, *args], input=input)


class Pages:
    """A history responder that answers with the given pages in turn (the last one repeats)."""

    def __init__(self, *pages: tuple[list[dict[str, Any]], str]) -> None:
        self.pages = list(pages)
        self.tokens_seen: list[str | None] = []

    def __call__(self, request: Recorded) -> Reply:
        self.tokens_seen.append(request.param("next_token"))
        items, token = self.pages.pop(0) if len(self.pages) > 1 else self.pages[0]
        return Reply(json={"Items": items, "NextToken": token})


def serve_submission(server: FakeBacalhau, final: dict[str, Any], history: Pages) -> None:
    server.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev-1", "Warnings": []})
    server.on("GET", f"{JOBS}/{JOB_ID}", {"Job": final})
    server.on("GET", f"{JOBS}/{JOB_ID}/history", history)


def write_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---------------------------------------------------------------- job run


def test_job_run_sends_the_spec_and_shows_events_until_done(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    history = Pages(
        (
            [
                history_item(1, "Submission", "Job submitted"),
                history_item(2, "Scheduling", "Requested execution on n-12345678", exec_id=EXEC_ID),
            ],
            "t1",
        ),
        ([], "t1"),  # nothing new yet: the server repeats the token
        (
            [
                history_item(3, "Running Execution", "Running", exec_id=EXEC_ID),
                history_item(4, "Execution", "Completed successfully", exec_id=EXEC_ID),
                history_item(5, "State Update", "Job completed", NewState="Completed"),
            ],
            "",
        ),
    )
    serve_submission(fake_api, wire_job("Completed"), history)

    result = run_cli(fake_api, "job", "run", str(write_spec(tmp_path, SPEC)))

    assert result.exit_code == 0, result.output
    (put,) = fake_api.calls("PUT", JOBS)
    assert put.body == {"Job": SPEC, "Force": False}
    out = result.output
    assert f"Job successfully submitted. Job ID: {JOB_ID}" in out
    order = [
        "Job submitted",
        "Requested execution on n-12345678",
        "Running",
        "Completed successfully",
        "Job completed",
    ]
    positions = [out.index(message) for message in order]
    assert positions == sorted(positions)
    assert "e-9f8e7d6c " in out  # short execution id column
    assert history.tokens_seen == [None, "t1", "t1"]  # stopped once the token was empty
    assert f"bacalhau job describe {JOB_ID}" in out
    assert f"bacalhau job get {JOB_ID}" in out


def test_job_run_failed_job_exits_1_with_its_message(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    history = Pages(
        (
            [
                history_item(1, "Submission", "Job submitted"),
                history_item(
                    2,
                    "Scheduling",
                    "not enough nodes to run job. requested: 1, available: 0, suitable: 0.",
                    IsError="true",
                    Hint="start a compute node",
                ),
            ],
            "",
        )
    )
    serve_submission(fake_api, wire_job("Failed", "not enough nodes to run job"), history)

    result = run_cli(fake_api, "job", "run", str(write_spec(tmp_path, SPEC)))

    assert result.exit_code == 1
    assert "Error: not enough nodes to run job. requested: 1" in result.output
    assert "Hint: start a compute node" in result.output
    assert "Error: job failed: not enough nodes to run job" in result.output
    assert "Traceback" not in result.output


def test_job_run_reads_json_from_stdin_with_force_and_no_wait(fake_api: FakeBacalhau) -> None:
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev-1", "Warnings": ["w1"]})
    result = run_cli(fake_api, "job", "run", "--force", "--no-wait", input=json.dumps(SPEC))
    assert result.exit_code == 0, result.output
    assert fake_api.calls("PUT", JOBS)[0].body == {"Job": SPEC, "Force": True}
    assert "Warning: w1" in result.stderr
    assert f"Job ID: {JOB_ID}" in result.stdout
    assert not fake_api.calls("GET", f"{JOBS}/{JOB_ID}/history")


def test_job_run_id_only_waits_silently(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    history = Pages(([history_item(1, "Submission", "Job submitted")], ""))
    serve_submission(fake_api, wire_job("Completed"), history)
    result = run_cli(fake_api, "job", "run", "--id-only", str(write_spec(tmp_path, SPEC)))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{JOB_ID}\n"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ID", "field 'ID' is set by the server"),
        ("State", "field 'State' is set by the server"),
        ("Version", "field 'Version' is set by the server"),
        ("Tsks", "unknown field 'Tsks'; a job spec may only contain Name, Namespace"),
    ],
)
def test_job_run_rejects_keys_before_sending(
    fake_api: FakeBacalhau, tmp_path: Path, key: str, expected: str
) -> None:
    result = run_cli(fake_api, "job", "run", str(write_spec(tmp_path, {**SPEC, key: "x"})))
    assert result.exit_code == 2
    assert expected in result.output
    assert fake_api.requests == []


def test_job_run_dry_run_prints_the_spec_and_submits_nothing(
    fake_api: FakeBacalhau, tmp_path: Path
) -> None:
    path = write_spec(tmp_path, SPEC)
    result = run_cli(fake_api, "job", "run", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == SPEC
    as_json = run_cli(fake_api, "job", "run", "--dry-run", "--output", "json", str(path))
    assert json.loads(as_json.output) == SPEC
    assert fake_api.requests == []


def test_job_run_rejects_a_document_that_is_not_a_job(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- just\n- a list\n")
    result = run_cli(None, "job", "run", str(path))
    assert result.exit_code == 2
    assert "must hold one job" in result.output


def test_job_run_follow_streams_logs(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    serve_submission(fake_api, wire_job("Completed"), Pages(([], "")))
    frames = [{"value": {"Type": 1, "Line": "line one\n"}}, {"value": {"Type": 1, "Line": "two"}}]
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/logs", Reply(ws_frames=frames))
    result = run_cli(fake_api, "job", "run", "-f", str(write_spec(tmp_path, SPEC)))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("line one\ntwo\n")
    (logs,) = fake_api.calls("GET", f"{JOBS}/{JOB_ID}/logs")
    assert logs.param("follow") == "true"


# ---------------------------------------------------------------- errors


def test_server_error_prints_message_and_hint_not_a_traceback(fake_api: FakeBacalhau) -> None:
    fake_api.on(
        "GET",
        f"{JOBS}/j-nope",
        {
            "Status": 404,
            "Message": "job not found: j-nope",
            "Code": "NotFound",
            "Component": "JobStore",
            "Hint": "check the ID with `bacalhau job list`",
        },
        status=404,
    )
    result = run_cli(fake_api, "job", "describe", "j-nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: job not found: j-nope\nHint: check the ID with `bacalhau job list`\n"
    )


def test_unreachable_api_gives_advice(tmp_path: Path) -> None:
    result = run_cli(None, "job", "list")
    assert result.exit_code == 1
    assert "Error: cannot reach the Bacalhau API at http://127.0.0.1:1" in result.stderr
    assert "bacalhau serve" in result.stderr
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- describe / list / history


def full_job_answer() -> dict[str, Any]:
    execution = {
        "ID": EXEC_ID,
        "NodeID": NODE_ID,
        "JobID": JOB_ID,
        "Revision": 4,
        "DesiredState": {"StateType": 2},
        "ComputeState": {"StateType": 9, "Message": ""},
        "RunOutput": {"Stdout": "3 9 44\n", "stderr": "", "ExitCode": 0},
        "CreateTime": 1_700_000_000_000_000_000,
        "ModifyTime": 1_700_000_002_000_000_000,
    }
    return {
        "Job": wire_job("Completed"),
        "History": {
            "Items": [
                history_item(1, "Submission", "Job submitted"),
                history_item(2, "Execution", "Completed successfully", exec_id=EXEC_ID),
            ],
            "NextToken": "",
        },
        "Executions": {"Items": [execution], "NextToken": ""},
    }


def test_job_describe_human_view(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", full_job_answer())
    result = run_cli(fake_api, "job", "describe", JOB_ID)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"ID            = {JOB_ID}" in out
    assert "State         = Completed" in out
    assert "Completed = 1" in out  # execution summary
    assert "Job History" in out and "Job submitted" in out
    assert "Executions" in out and "e-9f8e7d6c" in out and "n-12345678" in out
    assert "Stopped" in out  # desired state by name, not number
    assert out.rstrip().endswith("Standard Output\n3 9 44")
    (request,) = fake_api.requests
    assert request.param("include") == "history,executions"


def test_job_describe_json_is_the_wire_answer(fake_api: FakeBacalhau) -> None:
    answer = full_job_answer()
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", answer)
    result = run_cli(fake_api, "job", "describe", JOB_ID, "--output", "json")
    assert json.loads(result.output) == answer


def test_job_list_table_and_formats(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", JOBS, {"Items": [wire_job("Running")], "NextToken": "abc"})
    result = run_cli(fake_api, "job", "list", "--labels", "team=data", "--order-reversed")
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split() == ["CREATED", "ID", "NAME", "JOB", "TYPE", "STATE"]
    assert "j-0a1b2c3d" in row and "wasm" in row and "batch" in row and "Running" in row
    assert "bacalhau job list --next-token abc" in result.output
    (request,) = fake_api.requests
    assert request.query == [("limit", "10"), ("reverse", "true"), ("labels", "team=data")]

    as_yaml = run_cli(fake_api, "job", "list", "--output", "yaml")
    assert yaml.safe_load(as_yaml.output)[0]["ID"] == JOB_ID


def test_job_history_and_executions_tables(fake_api: FakeBacalhau) -> None:
    fake_api.on(
        "GET",
        f"{JOBS}/{JOB_ID}/history",
        Pages(([history_item(1, "Submission", "Job submitted")], "t"), ([], "t")),
    )
    fake_api.on(
        "GET", f"{JOBS}/{JOB_ID}/executions", {"Items": full_job_answer()["Executions"]["Items"]}
    )
    history = run_cli(fake_api, "job", "history", JOB_ID, "--event-type", "job")
    assert history.exit_code == 0, history.output
    assert "Job submitted" in history.output and "JobLevel" in history.output
    assert fake_api.calls("GET", f"{JOBS}/{JOB_ID}/history")[0].param("event_type") == "job"

    executions = run_cli(fake_api, "job", "executions", JOB_ID)
    assert executions.exit_code == 0, executions.output
    assert "Completed" in executions.output and "e-9f8e7d6c" in executions.output


def test_job_logs_and_stop(fake_api: FakeBacalhau) -> None:
    fake_api.on(
        "GET",
        f"{JOBS}/{JOB_ID}/logs",
        Reply(
            ws_frames=[
                {"value": {"Type": 1, "Line": "out\n"}},
                {"value": {"Type": 2, "Line": "err"}},
            ]
        ),
    )
    fake_api.on("DELETE", f"{JOBS}/{JOB_ID}", {"EvaluationID": "ev-9"})
    logs = run_cli(fake_api, "job", "logs", JOB_ID, "-e", EXEC_ID)
    assert logs.exit_code == 0, logs.output
    assert logs.stdout == "out\nerr\n"

    stop = run_cli(fake_api, "job", "stop", JOB_ID)
    assert stop.exit_code == 0, stop.output
    assert "ev-9" in stop.output
    assert fake_api.calls("DELETE", f"{JOBS}/{JOB_ID}")[0].body == {
        "reason": "Stopped at user request"
    }
    quiet = run_cli(fake_api, "job", "stop", "--quiet", JOB_ID)
    assert quiet.output == ""


def test_global_options_are_accepted_after_the_subcommand() -> None:
    args = ["job", "list", "--api-port", "9", "-c", "A=1", "--limit=3", "--", "-c", "x"]
    assert hoist_global_options(args) == [
        "--api-port",
        "9",
        "-c",
        "A=1",
        "job",
        "list",
        "--limit=3",
        "--",
        "-c",
        "x",
    ]


def test_job_rerun(fake_api: FakeBacalhau) -> None:
    fake_api.on(
        "PUT",
        f"{JOBS}/{JOB_ID}/rerun",
        {"EvaluationID": "ev-5", "JobID": JOB_ID, "JobVersion": 2, "Warnings": []},
    )
    result = run_cli(fake_api, "job", "rerun", JOB_ID, "-v", "1")
    assert result.exit_code == 0, result.output
    assert "version 2, evaluation ev-5" in result.output
    assert fake_api.requests[0].body["JobVersion"] == 1


def test_wait_gives_up_at_the_wait_timeout(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    history = Pages(([history_item(1, "Submission", "Job submitted")], "t"), ([], "t"))
    serve_submission(fake_api, wire_job("Running"), history)
    spec = str(write_spec(tmp_path, SPEC))
    result = run_cli(fake_api, "job", "run", "--wait-timeout-secs", "1", spec)
    assert result.exit_code == 1
    assert "Error: stopped waiting after 1s; the job is still running" in result.stderr
    assert f"bacalhau job describe {JOB_ID}" in result.stderr
