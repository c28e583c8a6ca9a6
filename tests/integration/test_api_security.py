"""A real `bacalhau serve` with users, TLS and secrets, driven by the real CLI in other processes:
credentials from BACALHAU_API_KEY / BACALHAU_API_USERNAME+PASSWORD, 401 advice, capabilities,
HTTPS with a self-signed certificate (`--insecure`), and no secret anywhere in what the node
printed or wrote."""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.conftest import ServeProcess
from tests.jobspecs import wordcount_job

pytestmark = [pytest.mark.integration]

API_KEY = "apikey-" + secrets.token_hex(16)
READ_KEY = "readkey-" + secrets.token_hex(16)
PASSWORD = "pw-" + secrets.token_hex(12)
HASHED_PASSWORD = "hpw-" + secrets.token_hex(12)
PASSWORD_HASH = bcrypt.hashpw(HASHED_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
SWARM_KEY_HEX = secrets.token_hex(32)
AWS_SECRET = "aws/" + secrets.token_hex(20)
SECRETS = [API_KEY, READ_KEY, PASSWORD, HASHED_PASSWORD, PASSWORD_HASH, SWARM_KEY_HEX,
           AWS_SECRET]


class SecureServe(ServeProcess):
    """ServeProcess over HTTPS (self-signed: not verified) when `tls` is set."""

    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.logs()[-2000:]}")
        context = ssl._create_unverified_context() if self.tls else None
        with urllib.request.urlopen(self.url + "/api/v1/agent/alive", timeout=1.0,
                                    context=context) as resp:
            return resp.status == 200 and bool(self.run_info())


def _cli(server: ServeProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = server.env()
    for name in ("BACALHAU_API_KEY", "BACALHAU_API_USERNAME", "BACALHAU_API_PASSWORD",
                 "BACALHAU_API_TLS_USETLS", "BACALHAU_API_TLS_INSECURE",
                 "BACALHAU_API_TLS_CAFILE"):
        environ.pop(name, None)
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "bacalhau", *args], capture_output=True,
                          text=True, timeout=60, env=environ)


def _users_config(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"API": {"Auth": {"Users": [
        {"Alias": "ci", "APIKey": API_KEY, "Capabilities": [{"Actions": ["*"]}]},
        {"Alias": "reader", "APIKey": READ_KEY,
         "Capabilities": [{"Actions": ["read:job", "read:node"]}]},
        {"Username": "alice", "Password": PASSWORD,
         "Capabilities": [{"Actions": ["read:*"]}]},
        {"Username": "bob", "Password": PASSWORD_HASH,
         "Capabilities": [{"Actions": ["read:node", "write:node"]}]},
    ]}}}))
    return path


@pytest.fixture
def secure_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    swarm_key = tmp_path / "swarm.key"  # outside the data dir, like the users' config
    swarm_key.write_text(f"/key/swarm/psk/1.0.0/\n/base16/\n{SWARM_KEY_HEX}\n")
    swarm_key.chmod(0o600)
    config = _users_config(tmp_path / "users.yaml")
    server = SecureServe(data_dir=tmp_path / "node", extra_args=[
        "-c", str(config), "--swarm-key", str(swarm_key), "-c", "API.TLS.SelfSigned=true",
        "--log-level", "debug"])
    server.tls = True
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def test_users_tls_and_no_secret_leaks(secure_server: SecureServe) -> None:
    server = secure_server
    outputs: list[str] = []

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        proc = _cli(server, "--insecure", *args, **env)
        outputs.extend([proc.stdout, proc.stderr])
        return proc

    # HTTPS only: plain HTTP and unverified-less HTTPS fail with an error, not a traceback
    plain = _cli(server, "agent", "alive")
    assert plain.returncode != 0 and "Traceback" not in plain.stderr
    verified = _cli(server, "--tls", "agent", "alive")
    assert verified.returncode != 0 and "certificate" in verified.stderr.lower()
    assert run("agent", "alive").returncode == 0  # open endpoint

    denied = run("job", "list")
    assert denied.returncode == 1
    assert "Request Unauthorized" in denied.stderr
    assert "BACALHAU_API_KEY" in denied.stderr and "BACALHAU_API_USERNAME" in denied.stderr
    wrong = run("job", "list", BACALHAU_API_KEY="wrong-" + secrets.token_hex(16))
    assert wrong.returncode == 1 and "Request Unauthorized" in wrong.stderr

    listed = run("job", "list", "--output", "json", BACALHAU_API_KEY=API_KEY)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    # a waited run follows its job over HTTPS with the credential (long-polled history)
    spec = server.data_dir.parent / "wordcount.yaml"
    spec.write_text(yaml.safe_dump(wordcount_job()))
    waited = run("job", "run", str(spec), "--wait", BACALHAU_API_KEY=API_KEY)
    assert waited.returncode == 0, waited.stderr
    assert "Completed successfully" in waited.stdout and "Job completed: j-" in waited.stdout
    nodes = run("node", "list", BACALHAU_API_USERNAME="alice", BACALHAU_API_PASSWORD=PASSWORD)
    assert nodes.returncode == 0, nodes.stderr
    # bob (bcrypt password) may read nodes, but not jobs
    assert run("node", "list", BACALHAU_API_USERNAME="bob",
               BACALHAU_API_PASSWORD=HASHED_PASSWORD).returncode == 0
    forbidden = run("job", "list", BACALHAU_API_USERNAME="bob",
                    BACALHAU_API_PASSWORD=HASHED_PASSWORD)
    assert forbidden.returncode == 1 and "Request Forbidden" in forbidden.stderr
    # the read-only key cannot stop anything
    stop = run("job", "stop", "j-1234", BACALHAU_API_KEY=READ_KEY)
    assert stop.returncode == 1 and "Request Forbidden" in stop.stderr

    # the logs WebSocket carries the credential too: the lookup answers, not a 401
    logs = run("job", "logs", "j-00000000", BACALHAU_API_KEY=API_KEY)
    assert logs.returncode == 1 and "not found" in logs.stderr, logs.stderr
    info = run("auth", "info", BACALHAU_API_KEY=READ_KEY)
    assert "Credentials: an API key" in info.stdout
    assert "Access: refused (403 Request Forbidden" in info.stdout  # no read:agent
    assert "Access: accepted" in run("auth", "info", BACALHAU_API_KEY=API_KEY).stdout

    # verified HTTPS: the run file names the self-signed certificate to trust
    run_file = server.run_info()
    assert run_file["BACALHAU_API_TLS_USETLS"] == "true"
    ca_file = run_file["BACALHAU_API_TLS_CAFILE"]
    assert Path(ca_file) == server.data_dir / "tls" / "api.crt"
    trusted = _cli(server, "job", "list", BACALHAU_API_KEY=API_KEY,
                   BACALHAU_API_TLS_CAFILE=ca_file)
    outputs.extend([trusted.stdout, trusted.stderr])
    assert trusted.returncode == 0, trusted.stderr
    assert (server.data_dir / "tls" / "api.key").stat().st_mode & 0o777 == 0o600

    config = run("agent", "config", "--output", "json", BACALHAU_API_KEY=API_KEY)
    assert config.returncode == 0, config.stderr
    users = json.loads(config.stdout)["API"]["Auth"]["Users"]
    assert {u.get("APIKey") or u.get("Password") for u in users} == {"********"}

    server.stop()
    # everything the node printed and wrote, and everything the CLI printed
    haystacks: list[tuple[str, bytes]] = [("cli output", "\n".join(outputs).encode())]
    for path in sorted(server.data_dir.rglob("*")):
        if path.is_file():
            haystacks.append((str(path), path.read_bytes()))
    assert any(name.endswith("serve.log") for name, _ in haystacks)
    assert any(name.endswith("api.crt") for name, _ in haystacks)
    for secret in SECRETS:
        needles = {secret.encode(), base64.b64encode(secret.encode())}
        for name, data in haystacks:
            assert not any(n in data for n in needles), f"a secret leaked into {name}"


def test_exposed_node_without_users_warns_loudly(tmp_path: Path) -> None:
    server = ServeProcess(data_dir=tmp_path / "node", host="0.0.0.0")
    server.start()
    try:
        assert "WITHOUT AUTHENTICATION" in server.logs()
    finally:
        server.stop()
    quiet = ServeProcess(data_dir=tmp_path / "quiet")
    quiet.start()
    try:
        assert "WITHOUT AUTHENTICATION" not in quiet.logs()
    finally:
        quiet.stop()


def test_cli_uses_env_credentials_with_a_config_file_node(tmp_path: Path) -> None:
    """Basic auth from a node's own `<DataDir>/config.yaml` (plain HTTP, loopback)."""
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    _users_config(data_dir / "config.yaml")
    server = ServeProcess(data_dir=data_dir)
    server.start()
    try:
        ok = _cli(server, "agent", "node", BACALHAU_API_USERNAME="alice",
                  BACALHAU_API_PASSWORD=PASSWORD)
        assert ok.returncode == 0, ok.stderr
        bad = _cli(server, "agent", "node", BACALHAU_API_USERNAME="alice",
                   BACALHAU_API_PASSWORD="nope-nope-nope")
        assert bad.returncode == 1 and "Request Unauthorized" in bad.stderr
    finally:
        server.stop()
