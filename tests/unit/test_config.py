"""Config precedence: defaults < config.yaml < BACALHAU_* env < -c flags; durations; redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.config import load_config, parse_duration
from bacalhau.errors import ConfigError

pytestmark = pytest.mark.unit


def test_precedence(tmp_path):
    (tmp_path / "config.yaml").write_text("API:\n  Port: 2000\n  Host: 127.0.0.9\n")
    cfg = load_config(tmp_path, ["api.port=3000"], environ={"BACALHAU_API_HOST": "127.0.0.7"})
    assert cfg.get("API.Port") == 3000
    assert cfg.get("api.host") == "127.0.0.7"
    assert cfg.get("Compute.AllocatedCapacity.CPU") == "80%"
    assert cfg.data_dir == tmp_path.resolve()


def test_yaml_file_override_and_errors(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("Compute:\n  AllowListedLocalPaths: ['/data:ro']\n")
    cfg = load_config(tmp_path, [str(extra)], environ={})
    assert cfg.get("Compute.AllowListedLocalPaths") == ["/data:ro"]
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path, ["missing.yaml"], environ={})


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("1m", 60), ("100ms", 0.1),
                                               ("1h30m", 5400), (5, 5)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_bad_duration_says_how():
    with pytest.raises(ConfigError, match=r'use e\.g\. "30s"'):
        parse_duration("soon", "Orchestrator.Scheduler.QueueBackoff")


def test_redaction(tmp_path):
    cfg = load_config(tmp_path, ["Orchestrator.Auth.Token=s3cret"], environ={})
    assert "s3cret" not in repr(cfg.redacted())
    assert cfg.redacted()["Orchestrator"]["Auth"]["Token"] == "********"


def test_labels_from_a_string_override_and_a_mapping(tmp_path: Path) -> None:
    assert load_config(tmp_path, ["Labels=zone=eu,tier=gold"], environ={}).labels() \
        == {"zone": "eu", "tier": "gold"}
    assert load_config(tmp_path, ["Labels={zone: us}"], environ={}).labels() == {"zone": "us"}


SCALARS = ["127.0.0.1", "10.0.0.1", "18234", "0", "00", "0755", "1_000", "0x1F", "-1", "+1",
           "1.5", "1.", "1e5", "1:20", "1.2.3", "1..2", ".inf", "2001-12-14", "", "~", "null",
           "NULL", "yes", "On", "OFF", "True", "y", "N", "localhost", "example.com", "a-b",
           "node-1", "a..b", "x.", "12D3KooW", "99999999999999999999", "[a, b]", "a=1,b=2"]


@pytest.mark.parametrize("text", SCALARS)
def test_env_and_flag_values_read_as_yaml_does(text: str) -> None:
    """`_coerce` answers plain numbers and names without the YAML parser (issue 15: a CLI
    run reads its BACALHAU_* env), with the value and type YAML gives."""
    import yaml

    from bacalhau.config import _coerce

    expected = yaml.safe_load(text)
    assert _coerce(text) == expected and type(_coerce(text)) is type(expected)
