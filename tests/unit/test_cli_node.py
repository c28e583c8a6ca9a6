"""`bacalhau node|agent|version` against a fake API, and how `serve`/`devstack` hand over."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli
from bacalhau.version import build_version_info
from tests.unit.test_cli_support import NODE_ID, FakeBacalhau, fake_api

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

NODES = "/api/v1/orchestrator/nodes"


def run_cli(server: FakeBacalhau | None, *args: str) -> Result:
    port = str(server.port) if server else "1"
    return CliRunner().invoke(cli, ["--api-port", port, *args])


def node_state(node_type: str = "Compute", **extra: Any) -> dict[str, Any]:
    return {
        "Info": {
            "NodeID": NODE_ID,
            "NodeType": node_type,
            "Labels": {"os_type": "linux", "zone": "eu"},
            "ComputeNodeInfo": {
                "AvailableCapacity": {"CPU": 1.5, "Memory": 2_000_000_000},
                "MaxCapacity": {"CPU": 4, "Memory": 8_000_000_000},
            },
        },
        "Membership": "APPROVED",
        "ConnectionState": {"Status": "CONNECTED"},
        **extra,
    }


def test_node_list_table_and_filters(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", NODES, {"Nodes": [node_state()], "NextToken": ""})
    result = run_cli(
        fake_api, "node", "list", "--filter-approval", "pending", "--filter-status", "connected"
    )
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split()[:5] == ["ID", "TYPE", "APPROVAL", "STATUS", "LABELS"]
    assert "n-12345678" in row and "APPROVED" in row and "CONNECTED" in row
    assert "os_type=linux zone=eu" in row
    assert "1.5 / 4" in row and "2.0 GB / 8.0 GB" in row
    (request,) = fake_api.requests
    assert request.query == [("filter-approval", "PENDING"), ("filter-status", "CONNECTED")]


def test_node_describe_and_actions(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", f"{NODES}/n-1234", {"Node": node_state()})
    fake_api.on("PUT", f"{NODES}/n-1234", {"Success": True})
    described = run_cli(fake_api, "node", "describe", "n-1234")
    assert yaml.safe_load(described.output)["Info"]["NodeID"] == NODE_ID

    approved = run_cli(fake_api, "node", "approve", "n-1234", "-m", "ok by me")
    assert approved.exit_code == 0 and approved.output == "Ok\n"
    assert fake_api.calls("PUT", f"{NODES}/n-1234")[0].body == {
        "Action": "approve",
        "Message": "ok by me",
        "NodeID": "n-1234",
    }

    fake_api.on("PUT", f"{NODES}/n-1234", {"Success": False, "Error": "node is already rejected"})
    rejected = run_cli(fake_api, "node", "reject", "n-1234")
    assert rejected.exit_code == 1
    assert "Error: could not reject node n-1234: node is already rejected" in rejected.stderr


def test_agent_commands(fake_api: FakeBacalhau) -> None:
    version = {"GitVersion": "v1.9.0-py0.1.0", "BuildDate": "2026-01-01", "GitCommit": "abc"}
    fake_api.on("GET", "/api/v1/agent/version", version)
    fake_api.on("GET", "/api/v1/agent/alive", {"Status": "OK"})
    fake_api.on("GET", "/api/v1/agent/config", {"config": {"API": {"Port": 1234}}})

    printed = run_cli(fake_api, "agent", "version")
    assert printed.output == "Bacalhau v1.9.0-py0.1.0\nBuildDate 2026-01-01\nGitCommit abc\n"
    assert json.loads(run_cli(fake_api, "agent", "version", "--output", "json").output) == version
    assert yaml.safe_load(run_cli(fake_api, "agent", "alive").output) == {"Status": "OK"}
    assert yaml.safe_load(run_cli(fake_api, "agent", "config").output) == {"API": {"Port": 1234}}

    both = run_cli(fake_api, "version")
    assert both.exit_code == 0, both.output
    assert both.output.split() == [
        "CLIENT",
        "SERVER",
        build_version_info()["GitVersion"],
        "v1.9.0-py0.1.0",
    ]


def test_version_client_only_needs_no_server() -> None:
    result = run_cli(None, "version", "--client")
    assert result.exit_code == 0, result.output
    assert build_version_info()["GitVersion"] in result.output


# ---------------------------------------------------------------- serve / devstack hand-over


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stand-ins for the lead's `bacalhau.node.run_node` and `bacalhau.devstack.run_devstack`."""
    calls: dict[str, Any] = {}

    async def run_node(config: Any) -> None:
        calls["node"] = config

    async def run_devstack(config: Any, **kwargs: Any) -> None:
        calls["devstack"] = (config, kwargs)

    node_mod = types.ModuleType("bacalhau.node")
    node_mod.run_node = run_node  # type: ignore[attr-defined]
    devstack_mod = types.ModuleType("bacalhau.devstack")
    devstack_mod.run_devstack = run_devstack  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bacalhau.node", node_mod)
    monkeypatch.setitem(sys.modules, "bacalhau.devstack", devstack_mod)
    for name in ("BACALHAU_API_HOST", "BACALHAU_API_PORT", "BACALHAU_DIR"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_serve_defaults_to_an_orchestrator(captured: dict[str, Any], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path), "-c", "API.Port=1299"])
    assert result.exit_code == 0, result.output
    config = captured["node"]
    assert config.get("Orchestrator.Enabled") is True
    assert config.get("Compute.Enabled") is False
    assert config.get("API.Port") == 1299
    assert config.data_dir == tmp_path.resolve()


def test_serve_roles_and_name(captured: dict[str, Any], tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path), "serve", "--compute", "--name", "worker-1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = captured["node"]
    assert (config.get("Orchestrator.Enabled"), config.get("Compute.Enabled")) == (False, True)
    assert config.get("Name") == "worker-1"


def test_devstack_passes_counts_and_allow_list(captured: dict[str, Any], tmp_path: Path) -> None:
    args = [
        "devstack",
        "--computes",
        "2",
        "--hybrids",
        "1",
        "--stack-repo",
        str(tmp_path / "stack"),
        "--allow-listed-local-paths",
        "/data:ro",
        "--allow-listed-local-paths",
        "/scratch:rw",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config, kwargs = captured["devstack"]
    assert kwargs == {
        "computes": 2,
        "orchestrators": 1,
        "hybrids": 1,
        "base_dir": (tmp_path / "stack").resolve(),
    }
    assert config.get("Compute.AllowListedLocalPaths") == ["/data:ro", "/scratch:rw"]
