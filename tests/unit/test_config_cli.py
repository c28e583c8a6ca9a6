"""`bacalhau config list|get|set|default` (`bacalhau.config_keys`): values round-trip through
the file into what a node loads, bad values are refused naming the key and write nothing,
secrets are redacted in `list`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli
from bacalhau.config import DEFAULTS, load_config
from bacalhau.config_keys import check_value, known_keys
from bacalhau.errors import ConfigError

pytestmark = pytest.mark.unit


def bacalhau(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], env=env or {})


def test_set_then_get_round_trips_and_the_node_loads_it(tmp_path: Path) -> None:
    assert bacalhau(tmp_path, "config", "set", "API.Port=1235").exit_code == 0
    got = bacalhau(tmp_path, "config", "get", "api.port")  # keys are case-insensitive
    assert got.exit_code == 0, got.output
    assert got.output == "1235\n"
    assert bacalhau(tmp_path, "config", "set", "Network.Peers", "/ip4/127.0.0.1/tcp/1/p2p/a",
                    "/ip4/127.0.0.1/tcp/2/p2p/b").exit_code == 0
    assert bacalhau(tmp_path, "config", "set", "labels=region=eu,zone=a").exit_code == 0
    assert bacalhau(tmp_path, "config", "set", "Compute.AllocatedCapacity.CPU", "50%"
                    ).exit_code == 0
    assert bacalhau(tmp_path, "config", "set", "Orchestrator.NodeManager.ManualApproval=true"
                    ).exit_code == 0

    config = load_config(tmp_path, environ={})  # what `bacalhau serve` reads
    assert config.get("API.Port") == 1235
    assert config.strings("Network.Peers") == ["/ip4/127.0.0.1/tcp/1/p2p/a",
                                               "/ip4/127.0.0.1/tcp/2/p2p/b"]
    assert config.labels() == {"region": "eu", "zone": "a"}
    assert config.get("Compute.AllocatedCapacity.CPU") == "50%"
    assert config.get("Orchestrator.NodeManager.ManualApproval") is True
    listed = bacalhau(tmp_path, "config", "get", "Network.Peers")
    assert yaml.safe_load(listed.output) == config.strings("Network.Peers")


def test_set_keeps_the_other_keys_and_their_casing(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("api:\n  host: 127.0.0.5\nwebui:\n  enabled: false\n")
    assert bacalhau(tmp_path, "config", "set", "API.Port=2000").exit_code == 0
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data == {"api": {"host": "127.0.0.5", "Port": 2000}, "webui": {"enabled": False}}


@pytest.mark.parametrize(("assignment", "fragment"), [
    ("API.Port=70000", 'API.Port: invalid value "70000"'),
    ("API.Port=many", 'API.Port: invalid value "many"'),
    ("API.HandlerTimeout=soon", 'API.HandlerTimeout: invalid duration "soon"'),
    ("API.MaxBodySize=lots", 'API.MaxBodySize: invalid size "lots"'),
    ("API.MaxBodySize=0", "API.MaxBodySize: must be a positive size"),
    ("Compute.AllocatedCapacity.Memory=150%", "Compute.AllocatedCapacity.Memory"),
    ("Compute.AllocatedCapacity.CPU=fast", 'Compute.AllocatedCapacity.CPU: invalid capacity'),
    ("Network.Transport=carrier-pigeon", "Network.Transport: invalid value"),
    ("WebUI.Enabled=maybe", "WebUI.Enabled: invalid value \"maybe\": expected true or false"),
    ("JobDefaults.Batch.Task.Resources.CPU=lots", "JobDefaults.Batch.Task.Resources.CPU"),
    ("Orchestrator.EvaluationBroker.NackDelays=5s,later",
     "Orchestrator.EvaluationBroker.NackDelays"),
    ("API.Auth.Users=[{Username: bob}]", "API.Auth.Users[0]"),
    ("Labels=[1, 2]", "Labels: invalid value"),
    ("API.Prot=1", "API.Prot: unknown config key"),
    ("Compute=1", "Compute: is a section, not a key"),
    ("DataDir=/elsewhere", "DataDir: is chosen with --data-dir"),
])
def test_a_bad_value_is_refused_naming_the_key_and_nothing_is_written(
        tmp_path: Path, assignment: str, fragment: str) -> None:
    (tmp_path / "config.yaml").write_text("API:\n  Port: 1300\n")
    before = (tmp_path / "config.yaml").read_bytes()
    result = bacalhau(tmp_path, "config", "set", assignment)
    assert result.exit_code == 1, result.output
    assert fragment in result.output
    assert "Nothing was written" in result.output
    assert (tmp_path / "config.yaml").read_bytes() == before


def test_unknown_keys_get_a_suggestion(tmp_path: Path) -> None:
    result = bacalhau(tmp_path, "config", "get", "API.Prot")
    assert result.exit_code == 2
    assert "did you mean API.Port" in result.output


def test_list_shows_effective_values_and_redacts_secrets(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"API": {"Auth": {"Users": [
        {"Username": "alice", "Password": "a-long-password",
         "Capabilities": [{"Actions": ["*"]}]},
        {"APIKey": "k" * 32, "Capabilities": [{"Actions": ["read:*"]}]}]}}}))
    table = bacalhau(tmp_path, "config", "list", "--wide", "--no-style",
                     env={"BACALHAU_API_PORT": "4321"})
    assert table.exit_code == 0, table.output
    assert "a-long-password" not in table.output and "k" * 32 not in table.output
    rows = {parts[0]: (parts[1:] or [""])[0].strip()
            for parts in (line.split(None, 1) for line in table.output.splitlines()[1:])
            if parts}
    assert rows["API.Port"] == "4321"  # env over file over defaults
    assert rows["Compute.AllocatedCapacity.CPU"] == "80%"
    assert '"Password":"********"' in rows["API.Auth.Users"]
    assert set(rows) == {spec.key for spec in known_keys().values()}
    as_yaml = bacalhau(tmp_path, "config", "list", "--output", "yaml")
    users = yaml.safe_load(as_yaml.output)["API"]["Auth"]["Users"]
    assert [u.get("Password") or u.get("APIKey") for u in users] == ["********", "********"]


def test_set_writes_the_file_named_with_c(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("{}\n")
    result = bacalhau(tmp_path / "data", "-c", str(other), "config", "set", "API.Port=1777")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(other.read_text()) == {"API": {"Port": 1777}}
    assert not (tmp_path / "data" / "config.yaml").exists()


def test_default_prints_the_defaults(tmp_path: Path) -> None:
    result = bacalhau(tmp_path, "config", "default")
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == DEFAULTS


def test_every_default_passes_its_own_check() -> None:
    # guards the kinds inferred from DEFAULTS as keys are added
    for spec in known_keys().values():
        if spec.key == "DataDir":
            continue
        check_value(spec.key, spec.default)


def test_check_value_reads_values_as_the_c_flag_does() -> None:
    assert check_value("API.Port", "1235")[1] == 1235
    assert check_value("WebUI.Enabled", "false")[1] is False
    assert check_value("API.RateLimit.RequestsPerSecond", "0.5")[1] == 0.5
    assert check_value("Engines.Disabled", "docker,wasm")[1] == ["docker", "wasm"]
    assert check_value("Engines.Types.Docker.Registries",
                       "{docker.io: {Username: u, Password: p}}")[1] == {
        "docker.io": {"Username": "u", "Password": "p"}}
    with pytest.raises(ConfigError, match=r"Engines\.Types\.Docker\.Registries"):
        check_value("Engines.Types.Docker.Registries", "{docker.io: u}")
