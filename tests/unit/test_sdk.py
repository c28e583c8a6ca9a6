"""The SDK without a server: `import bacalhau` stays cheap, `Job.wasm`/`Job.docker` build the
job the CLI's `wasm run`/`docker run --dry-run` print, and bad arguments are ValidationErrors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bacalhau import Job
from bacalhau.assets import asset_path
from bacalhau.cli.main import cli
from bacalhau.errors import ValidationError
from bacalhau.models import InputSource, SpecConfig

pytestmark = pytest.mark.unit


def loaded_after(code: str) -> set[str]:
    """Which heavy modules a fresh interpreter has loaded after running `code`."""
    probe = (f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in "
             "('aiohttp', 'rich', 'yaml', 'click', 'prometheus_client', 'docker', 'boto3') "
             "if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_bacalhau_loads_nothing_heavy() -> None:
    assert loaded_after("import bacalhau") == set()
    # the client needs aiohttp, and nothing of the CLI or the node
    assert loaded_after("from bacalhau import Client, AsyncClient, Job") == {"aiohttp"}


def cli_dry_run(*args: str) -> Job:
    result = CliRunner().invoke(cli, [*args[:2], "--dry-run", *args[2:]])
    assert result.exit_code == 0, result.output
    return Job.from_dict(yaml.safe_load(result.output))


def test_job_wasm_builds_the_job_wasm_run_builds(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("hello\n")
    module = str(asset_path("wordcount.wasm"))
    built = Job.wasm(module, "/inputs/in.txt", "-v", inputs=[f"{data}:/inputs/in.txt"],
                     outputs=["extra:/extra"], publisher="noop", cpu="250m", memory="64Mb",
                     timeout=30, name="wc", labels={"team": "data"}, env={"GREETING": "hi"},
                     entry_point="_start")
    expected = cli_dry_run("wasm", "run", "-i", f"{data}:/inputs/in.txt", "-o", "extra:/extra",
                           "-p", "noop", "--cpu", "250m", "--memory", "64Mb", "--timeout",
                           "30", "--name", "wc", "-l", "team=data", "-e", "GREETING=hi",
                           "--", module, "/inputs/in.txt", "-v")
    assert built.to_dict() == expected.to_dict()


def test_job_docker_builds_the_job_docker_run_builds() -> None:
    built = Job.docker("busybox:1.36", "echo", "hi", entrypoint=["/bin/sh", "-c"],
                       workdir="/work", env={"A": "1"}, publisher="local", gpu="1",
                       inputs=["https://example.com/data.csv:/inputs/data.csv"],
                       job_type="batch", count=2, constraints="zone=a")
    expected = cli_dry_run("docker", "run", "--entrypoint", "/bin/sh,-c", "-w", "/work",
                           "-e", "A=1", "-p", "local",
                           "--gpu", "1", "-i", "https://example.com/data.csv:/inputs/data.csv",
                           "--concurrency", "2", "-s", "zone=a", "--", "busybox:1.36", "echo",
                           "hi")
    assert built.to_dict() == expected.to_dict()


def test_builders_take_model_objects_and_keep_commas_in_values() -> None:
    source = InputSource(SpecConfig("urlDownload", {"URL": "https://example.com/x"}),
                         target="/inputs/x")
    publisher = SpecConfig("s3", {"Bucket": "b", "Key": "k/"})
    job = Job.docker("busybox", "sh", "-c", "echo a,b", entrypoint=["/bin/sh"],
                     env={"LIST": "a,B=2"}, inputs=[source], publisher=publisher)
    assert job.task.input_sources[-1].source.params["URL"] == "https://example.com/x"
    assert job.task.input_sources[-1] is not source  # the caller's object stays its own
    assert job.task.publisher == publisher
    params = job.task.engine.params
    assert params["Parameters"] == ["sh", "-c", "echo a,b"]
    assert params["EnvironmentVariables"] == ["LIST=a,B=2"]
    job.validate()  # a valid job as built


@pytest.mark.parametrize(("build", "fragment"), [
    (lambda: Job.wasm("no-such-module.wasm"), "no-such-module.wasm"),
    (lambda: Job.docker(" "), "image name must not be empty"),
    (lambda: Job.docker("busybox", workdir="relative"), "not an absolute path"),
    (lambda: Job.docker("busybox", env={"BACALHAU_X": "1"}), "reserved"),
    (lambda: Job.wasm(asset_path("wordcount.wasm"), job_type="sometimes"), "not a job type"),
    (lambda: Job.docker("busybox", network="carrier-pigeon"), "not a network type"),
])
def test_bad_builder_arguments_are_validation_errors(build, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        build()
