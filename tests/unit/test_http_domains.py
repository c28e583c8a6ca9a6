"""Domain allow-lists of `Network HTTP` (squid `dstdomain` rules) and the node's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.config import load_config
from bacalhau.errors import ConfigError, ValidationError
from bacalhau.executors.docker_http import HTTPSettings
from bacalhau.httpgateway.domains import allowed, covers, domain_problem, matches, uncovered
from bacalhau.models import Job, NetworkConfig

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("rule", "host", "expected"), [
    ("example.com", "example.com", True),
    ("example.com", "EXAMPLE.com.", True),
    ("example.com", "www.example.com", False),
    (".example.com", "example.com", True),
    (".example.com", "a.b.example.com", True),
    (".example.com", "badexample.com", False),
    (".example.com", "example.com.evil.org", False),
    ("10.1.2.3", "10.1.2.3", True),
    ("10.1.2.3", "10.1.2.4", False),
    ("*", "anything.org", True),
])
def test_matching_follows_squid_dstdomain(rule: str, host: str, expected: bool) -> None:
    assert matches(rule, host) is expected


def test_node_entries_cover_job_domains() -> None:
    assert covers(".example.com", "a.example.com") and covers(".example.com", ".a.example.com")
    assert covers(".example.com", "example.com") and covers("*", ".anything.org")
    # an exact entry never covers a wildcard, even of itself
    assert not covers("example.com", ".example.com")
    assert not covers("a.example.com", ".a.example.com")
    assert uncovered(["a.example.com", "x.org", ".example.com"], [".example.com"]) == ["x.org"]
    assert uncovered(["a.org"], []) == ["a.org"]
    assert allowed("b.a.org", ["x.org", ".a.org"]) and not allowed("a.org.x", [".a.org"])


@pytest.mark.parametrize("bad", ["", "http://example.com", "example.com:443", "example.com/x",
                                 "localhost", "a..b.com", "-a.com", "a.123", "*"])
def test_bad_job_domains_are_named(bad: str) -> None:
    assert domain_problem(bad)


def test_job_validation_names_a_bad_domain() -> None:
    job = Job.from_dict({"Type": "batch", "Tasks": [{
        "Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "x"}},
        "Network": {"Type": "HTTP", "Domains": ["example.com", "https://api.example.com"]}}]})
    with pytest.raises(ValidationError, match=r"Tasks\[0\]\.Network\.Domains\[1\]: "
                                              r'"https://api.example.com" is not a domain'):
        job.validate()


def test_node_options_are_read_and_checked(tmp_path: Path) -> None:
    settings = HTTPSettings.from_config(load_config(tmp_path, environ={}))
    assert settings.allow_list == ["*"] and settings.hosts == {}
    settings = HTTPSettings.from_config(load_config(tmp_path, [
        "Compute.Network.AllowListedDomains=[.Example.com, api.test.org]",
        "Compute.Network.ProxyHosts={Allowed.Test: 127.0.0.1}"], environ={}))
    assert settings.allow_list == [".example.com", "api.test.org"]
    assert settings.hosts == {"allowed.test": "127.0.0.1"}
    env = {"BACALHAU_COMPUTE_NETWORK_ALLOWLISTEDDOMAINS": "a.org,.b.org"}
    assert HTTPSettings.from_config(load_config(tmp_path, environ=env)).allow_list == [
        "a.org", ".b.org"]
    none = HTTPSettings.from_config(load_config(tmp_path, [
        "Compute.Network.AllowListedDomains=[]"], environ={}))
    assert none.domain_problems(NetworkConfig(type="HTTP", domains=["a.org"])) == [
        "this node does not allow the domain(s) a.org for Network HTTP "
        "(Compute.Network.AllowListedDomains: none)"]
    with pytest.raises(ConfigError, match=r'AllowListedDomains: "http://a.org" is not a domain'):
        HTTPSettings.from_config(load_config(tmp_path, [
            "Compute.Network.AllowListedDomains=[http://a.org]"], environ={}))
    with pytest.raises(ConfigError, match=r'ProxyHosts: "nowhere" \(for a.test\) is not an IP'):
        HTTPSettings.from_config(load_config(tmp_path, [
            "Compute.Network.ProxyHosts={a.test: nowhere}"], environ={}))
