"""`bacalhau job run -V/--no-template` against a real `bacalhau serve`: the rendered value
reaches the job (a WASM module prints its arguments), a missing value submits nothing and
names the key, and `--no-template` submits the spec as written."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ServeProcess
from tests.jobspecs import data_url, wasm_module

pytestmark = [pytest.mark.integration]


def probe_spec() -> str:
    """A batch job whose WASM module prints its arguments: the first is a template value."""
    job = {
        "Name": "greeter",
        "Type": "batch",
        "Count": 1,
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {
                "EntryModule": "/wasm/probe.wasm", "Parameters": ["PLACEHOLDER"]}},
            "InputSources": [{
                "Source": {"Type": "inline", "Params": {
                    "URL": data_url(wasm_module("probe.wasm"), "application/wasm")}},
                "Target": "/wasm/probe.wasm"}],
            "Publisher": {"Type": "noop"},
        }],
    }
    return yaml.safe_dump(job).replace("PLACEHOLDER", "'{{.greeting}}'")


def first_argument(server: ServeProcess, job_id: str) -> str:
    """What the module printed as its first argument (its stdout: argv[0], the arguments,
    `--`, the environment)."""
    status, body = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200, body
    (execution,) = body["Items"]
    return execution["RunOutput"]["Stdout"].splitlines()[1]


def job_ids(server: ServeProcess) -> list[str]:
    status, body = server.api("GET", "/api/v1/orchestrator/jobs")
    assert status == 200, body
    return [job["ID"] for job in body["Items"]]


def test_job_run_templates_against_a_real_node(bacalhau_server: ServeProcess, tmp_path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(probe_spec())

    missing = bacalhau_server.cli("job", "run", str(spec), "--wait")
    assert missing.returncode != 0
    assert "{{.greeting}}" in missing.stderr and "-V greeting=VALUE" in missing.stderr
    assert job_ids(bacalhau_server) == []  # nothing was submitted

    ran = bacalhau_server.cli("job", "run", str(spec), "-V", "greeting=hello-from-V",
                              "--id-only", "--wait")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    job_id = ran.stdout.strip().splitlines()[-1]
    assert first_argument(bacalhau_server, job_id) == "hello-from-V"

    raw = bacalhau_server.cli("job", "run", str(spec), "--no-template", "--id-only", "--wait")
    assert raw.returncode == 0, raw.stdout + raw.stderr
    raw_id = raw.stdout.strip().splitlines()[-1]
    assert first_argument(bacalhau_server, raw_id) == "{{.greeting}}"
