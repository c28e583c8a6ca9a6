"""The CLI's start (issue 15): one-shot commands import only what they use.

Each check runs the real `bacalhau` entry point in a fresh interpreter (a subprocess) and reads
which modules it loaded; the job commands talk to a real HTTP server (`fake_api`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bacalhau.cli.lazy import LazyGroup
from bacalhau.cli.main import COMMANDS, cli
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, fake_api, wire_job

__all__ = ["fake_api"]

HEAVY = ("aiohttp", "rich", "yaml", "bacalhau._native", "asyncio", "bacalhau.models.job")
"""Modules a one-shot command that prints a plain listing or its help must not load."""

_RUNNER = """
import atexit, json, sys
dump = sys.argv[1]
atexit.register(lambda: open(dump, "w").write(json.dumps(sorted(sys.modules))))
args = sys.argv[2:]
sys.argv = ["bacalhau", *args]
from bacalhau.cli.main import main
main()
"""


def loaded_modules(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    """Run `bacalhau ARGS` in a new interpreter; the modules it had loaded at exit and its
    stdout."""
    dump = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(dump), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(dump.read_text())), proc.stdout


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


def test_help_imports_no_network_stack_no_tables_no_yaml_no_native(tmp_path: Path) -> None:
    modules, out = loaded_modules(tmp_path, "--help")
    assert "Commands:" in out and "job" in out
    assert heavy_in(modules) == []
    # no command module but the root's own helpers
    assert "bacalhau.cli.run" not in modules and "bacalhau.cli.serve" not in modules


def test_job_list_and_describe_as_json_use_no_aiohttp(tmp_path: Path,
                                                      fake_api: FakeBacalhau) -> None:
    jobs = "/api/v1/orchestrator/jobs"
    fake_api.on("GET", jobs, {"Items": [wire_job()], "NextToken": ""})
    fake_api.on("GET", f"{jobs}/{JOB_ID}", {"Job": wire_job(), "History": {"Items": []},
                                             "Executions": {"Items": []}})
    port = str(fake_api.port)
    modules, out = loaded_modules(tmp_path, "--api-port", port, "job", "list",
                                  "--output", "json")
    assert json.loads(out)[0]["ID"] == JOB_ID
    assert heavy_in(modules) == []
    modules, out = loaded_modules(tmp_path, "--api-port", port, "job", "describe", JOB_ID,
                                  "--output", "json")
    assert json.loads(out)["Job"]["ID"] == JOB_ID
    assert heavy_in(modules) == []
    # the list filter goes over the wire exactly as the aiohttp client sent it
    assert fake_api.calls("GET", jobs)[-1].param("labels") == "bacalhau_canary != true"


def test_job_list_and_describe_tables_piped_use_no_rich(tmp_path: Path,
                                                       fake_api: FakeBacalhau) -> None:
    jobs = "/api/v1/orchestrator/jobs"
    fake_api.on("GET", jobs, {"Items": [wire_job()], "NextToken": ""})
    fake_api.on("GET", f"{jobs}/{JOB_ID}", {"Job": wire_job(), "History": {"Items": []},
                                             "Executions": {"Items": []}})
    port = str(fake_api.port)
    modules, out = loaded_modules(tmp_path, "--api-port", port, "job", "list")
    assert out.splitlines()[0].split() == ["CREATED", "ID", "NAME", "JOB", "TYPE", "STATE"]
    assert JOB_ID[:10] in out
    assert heavy_in(modules) == []
    modules, out = loaded_modules(tmp_path, "--api-port", port, "job", "describe", JOB_ID)
    assert f"ID            = {JOB_ID}" in out
    assert heavy_in(modules) == []


def test_unreachable_api_is_a_clean_error_without_aiohttp(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bacalhau", "--api-port", "1", "job", "list"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "cannot reach the Bacalhau API at http://127.0.0.1:1" in proc.stderr
    assert "Traceback" not in proc.stderr


def _groups() -> list[tuple[str, LazyGroup]]:
    ctx = click.Context(cli)
    job = cli.get_command(ctx, "job")
    assert isinstance(cli, LazyGroup) and isinstance(job, LazyGroup)
    return [("bacalhau", cli), ("bacalhau job", job)]


@pytest.mark.parametrize(("label", "group"), _groups())
def test_listed_help_lines_are_the_commands_own(label: str, group: LazyGroup) -> None:
    for name, lazy in group.lazy_commands.items():
        command = lazy.load()
        assert lazy.short_help == command.get_short_help_str(10_000), f"{label} {name}"


def test_unknown_command_still_suggests_a_lazy_one() -> None:
    result = CliRunner().invoke(cli, ["jbo"])
    assert result.exit_code == 2
    assert "Did you mean" in result.output and "job" in result.output


def test_docker_run_wait_uses_no_aiohttp_asyncio_or_yaml(tmp_path: Path,
                                                         fake_api: FakeBacalhau) -> None:
    """`docker run --wait` (issue 15: its wall time beside `docker run`'s) submits and follows
    the job on the one-shot client; env values are read without the YAML parser."""
    from tests.unit.test_cli_job import Pages
    from tests.unit.test_history_follow import PAGES

    jobs = "/api/v1/orchestrator/jobs"
    fake_api.on("PUT", jobs, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})
    fake_api.on("GET", f"{jobs}/{JOB_ID}", {"Job": wire_job()})
    fake_api.on("GET", f"{jobs}/{JOB_ID}/history", Pages(*PAGES))
    modules, out = loaded_modules(tmp_path, "--api-port", str(fake_api.port), "docker", "run",
                                  "--wait", "bacalhau-py/test:busybox", "--", "true")
    assert f"Job completed: {JOB_ID}" in out
    assert heavy_in(modules) == []


def test_a_client_command_ends_with_its_code_output_and_atexit_hooks(tmp_path: Path) -> None:
    """`main` skips the interpreter's teardown after client commands (`exit_without_teardown`):
    what a normal exit does still happens (atexit hooks, the whole output, the exit code)."""
    dump = tmp_path / "modules.json"
    ok = subprocess.run([sys.executable, "-c", _RUNNER, str(dump), "--help"],
                        capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0
    assert ok.stdout.startswith("Usage: bacalhau")
    assert ok.stdout.rstrip().endswith(COMMANDS["wasm"].short_help), "the whole help, flushed"
    assert dump.exists()
    dump.unlink()
    bad = subprocess.run([sys.executable, "-c", _RUNNER, str(dump), "--api-port", "1", "job",
                          "describe", JOB_ID], capture_output=True, text=True, timeout=60,
                         check=False)
    assert bad.returncode == 1
    assert "cannot reach the Bacalhau API" in bad.stderr and dump.exists()
    usage = subprocess.run([sys.executable, "-c", _RUNNER, str(dump), "no-such-command"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "No such command" in usage.stderr
