"""`bacalhau wasm run` builds the job JSON of the reference and submits exactly that."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli
from bacalhau.cli.spec import parse_input, parse_selector
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, fake_api

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"
MODULE_BYTES = b"\x00asm\x01\x00\x00\x00fake module"


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "main.wasm"
    path.write_bytes(MODULE_BYTES)
    return path


def run_cli(server: FakeBacalhau | None, *args: str) -> Result:
    port = str(server.port) if server else "1"
    return CliRunner().invoke(cli, ["--api-port", port, *args])


def submitted(server: FakeBacalhau) -> dict[str, Any]:
    (put,) = server.calls("PUT", JOBS)
    assert put.body["Force"] is False
    return put.body["Job"]


def test_wasm_run_inlines_the_module_and_sets_entry_module(
    fake_api: FakeBacalhau, module: Path
) -> None:
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})
    result = run_cli(
        fake_api,
        "wasm",
        "run",
        "--no-wait",
        "-o",
        "outputs:/outputs",
        "-e",
        "GREETING=hi,there",
        "--cpu",
        "500m",
        "--memory",
        "64Mb",
        "--timeout",
        "30",
        "-l",
        "team=data",
        "-s",
        "zone in (eu,us),gpu!=none",
        str(module),
        "--",
        "-v",
        "/inputs/a.txt",
    )
    assert result.exit_code == 0, result.output
    job = submitted(fake_api)
    (task,) = job["Tasks"]
    (source,) = task["InputSources"]
    assert source["Target"] == "/wasm/main.wasm"
    assert source["Source"]["Type"] == "inline"
    url = source["Source"]["Params"]["URL"]
    assert url.startswith("data:application/wasm;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == MODULE_BYTES
    assert task["Engine"] == {
        "Type": "wasm",
        "Params": {
            "EntryModule": "/wasm/main.wasm",
            "Entrypoint": "_start",
            "Parameters": ["-v", "/inputs/a.txt"],
        },
    }
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}]
    assert task["Publisher"] == {"Type": "local"}
    assert task["Env"] == {"GREETING": "hi,there"}
    assert task["Resources"] == {"CPU": "500m", "Memory": "64Mb"}
    assert task["Timeouts"] == {"ExecutionTimeout": 30}
    assert job["Type"] == "batch" and job["Count"] == 1 and job["Namespace"] == "default"
    assert job["Labels"] == {"team": "data"}
    assert job["Constraints"] == [
        {"Key": "zone", "Operator": "in", "Values": ["eu", "us"]},
        {"Key": "gpu", "Operator": "!=", "Values": ["none"]},
    ]


def test_wasm_run_always_gets_outputs_result_path(fake_api: FakeBacalhau, module: Path) -> None:
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})
    result = run_cli(fake_api, "wasm", "run", "--no-wait", "-p", "noop", str(module))
    assert result.exit_code == 0, result.output
    task = submitted(fake_api)["Tasks"][0]
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}]
    assert task["Publisher"] == {"Type": "noop"}


def test_wasm_run_module_from_an_input_target_and_target_all(fake_api: FakeBacalhau) -> None:
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})
    result = run_cli(
        fake_api,
        "wasm",
        "run",
        "--no-wait",
        "--target",
        "all",
        "-i",
        "https://example.com/mods/main.wasm:/wasm",
        "-i",
        "src=file:///data/in,dst=/inputs,opt=rw=true",
        "-I",
        "/wasm/lib.wasm",
        "/wasm/main.wasm",
    )
    assert result.exit_code == 0, result.output
    job = submitted(fake_api)
    assert job["Type"] == "ops" and "Count" not in job
    task = job["Tasks"][0]
    assert task["Engine"]["Params"]["EntryModule"] == "/wasm/main.wasm"
    assert task["Engine"]["Params"]["ImportModules"] == ["/wasm/lib.wasm"]
    assert task["InputSources"] == [
        {
            "Source": {
                "Type": "urlDownload",
                "Params": {"URL": "https://example.com/mods/main.wasm"},
            },
            "Alias": "https://example.com/mods/main.wasm",
            "Target": "/wasm",
        },
        {
            "Source": {"Type": "local", "Params": {"SourcePath": "/data/in", "ReadWrite": True}},
            "Alias": "file:///data/in",
            "Target": "/inputs",
        },
    ]


def test_wasm_run_dry_run_prints_yaml_and_submits_nothing(
    fake_api: FakeBacalhau, module: Path
) -> None:
    result = run_cli(fake_api, "wasm", "run", "--dry-run", "--name", "hello", str(module), "a")
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output)
    assert spec["Name"] == "hello"
    assert spec["Tasks"][0]["Engine"]["Params"]["Parameters"] == ["a"]
    assert fake_api.requests == []


def test_wasm_run_unknown_module_explains_what_to_pass(tmp_path: Path) -> None:
    result = run_cli(None, "wasm", "run", "--dry-run", str(tmp_path / "missing.wasm"))
    assert result.exit_code == 2
    assert "is neither a local file, a URI" in result.output
    assert "nor a path under the target of an --input" in result.output


@pytest.mark.parametrize(
    ("spec", "expected_type", "target"),
    [
        ("http://host:8080/a.txt", "urlDownload", "/inputs"),
        ("http://host:8080/a.txt:/data", "urlDownload", "/data"),
        ("file:///srv/x:/mnt/x", "local", "/mnt/x"),
        ("src=https://h/f,dst=/in", "urlDownload", "/in"),
        ("ipfs://QmWhfZpyPxoAfpu4JgTDX6qdjMoLryCZWBPoRvaDSUNsFv:/data", "ipfs", "/data"),
    ],
)
def test_input_forms(spec: str, expected_type: str, target: str) -> None:
    source = parse_input(spec)
    assert source["Source"]["Type"] == expected_type
    assert source["Target"] == target


def test_input_local_file_is_inlined(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello")
    source = parse_input(f"{path}:/inputs/a.txt")
    assert source["Source"]["Params"]["URL"] == (
        "data:application/octet-stream;base64," + base64.b64encode(b"hello").decode()
    )
    assert source["Target"] == "/inputs/a.txt"


@pytest.mark.parametrize(
    "spec", ["ftp://host/x", "ipfs://", "s3:///key", "src=,dst=/x", "x:relative",
             "src=s3://b/k,opt=colour=red"]
)
def test_input_unsupported_or_malformed(spec: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_input(spec)


def test_selector_operators() -> None:
    assert parse_selector("a=1, b==2, !c, d, e>3, f<4, g notin (x)") == [
        {"Key": "a", "Operator": "=", "Values": ["1"]},
        {"Key": "b", "Operator": "==", "Values": ["2"]},
        {"Key": "c", "Operator": "!", "Values": []},
        {"Key": "d", "Operator": "exists", "Values": []},
        {"Key": "e", "Operator": "gt", "Values": ["3"]},
        {"Key": "f", "Operator": "lt", "Values": ["4"]},
        {"Key": "g", "Operator": "notin", "Values": ["x"]},
    ]
    with pytest.raises(click.BadParameter):
        parse_selector("a in ()")
