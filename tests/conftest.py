"""Shared fixtures: free ports, waiting on conditions, and real `bacalhau serve` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "python" / "bacalhau" / "assets"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.02) -> Any:
    """Poll `condition` until it returns a truthy value or `timeout` passes (then fail)."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the server may not be up yet
            last_exc = exc
        time.sleep(interval)  # poll interval of a deadline-bounded wait, not synchronisation
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")


@dataclass
class ServeProcess:
    """A real `bacalhau serve` child process with its own data dir and ports.

    `roles` are the serve flags (hybrid by default); a node without `--orchestrator` has no
    API and counts as started once it has written its `bacalhau.run` (see `run_info`).
    `extra_args` go to serve as they are (`--peers`, `--listen`, `--swarm-key`, `-c`)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    publisher_port: int = 0
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    roles: tuple[str, ...] = ("--orchestrator", "--compute")

    @property
    def has_api(self) -> bool:
        return "--orchestrator" in self.roles

    def run_info(self) -> dict[str, str]:
        """The variables of this process's `<DataDir>/bacalhau.run` ({} until written by it)."""
        info: dict[str, str] = {}
        try:
            text = (self.data_dir / "bacalhau.run").read_text()
        except FileNotFoundError:
            return info
        for line in text.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export "):].partition("=")
                info[key] = value.strip("'")
        if self.proc is None or info.get("BACALHAU_NODE_PID") != str(self.proc.pid):
            return {}
        return info

    @property
    def node_id(self) -> str:
        return self.run_info().get("BACALHAU_NODE_ID", "")

    def addresses(self) -> list[str]:
        """Dialable libp2p addresses (`/ip4/…/tcp/…/p2p/<id>`) of the running node."""
        peers = self.run_info().get("BACALHAU_NETWORK_PEERS", "")
        return [a for a in peers.split(",") if a]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["BACALHAU_API_HOST"] = self.host
        env["BACALHAU_API_PORT"] = str(self.port)
        env["BACALHAU_DIR"] = str(self.data_dir)
        return env

    def start(self, timeout: float = 30.0) -> None:
        if not self.port:
            self.port = free_port(self.host)
        if not self.publisher_port:
            self.publisher_port = free_port(self.host)
        self.log_path = self.data_dir / "serve.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "bacalhau", "--data-dir", str(self.data_dir),
            "serve", *self.roles,
            "-c", f"API.Host={self.host}", "-c", f"API.Port={self.port}",
            "-c", f"Publishers.Types.Local.Port={self.publisher_port}",
            "-c", f"Publishers.Types.Local.Address={self.host}",
            "-c", f'Compute.AllowListedLocalPaths=["{self.data_dir / "allowed"}/**:rw"]',
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env())
        log.close()
        wait_until(self._alive, timeout, what=f"bacalhau serve on {self.url}")

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.logs()[-2000:]}")
        if not self.has_api:
            return bool(self.run_info())
        status, body = http_json("GET", self.url + "/api/v1/agent/alive", timeout=1.0)
        return status == 200 and body.get("Status") == "OK" and bool(self.run_info())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def cli(self, *args: str, input: str | None = None, timeout: float = 60.0,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the `bacalhau` CLI in another process against this server."""
        return subprocess.run(
            [sys.executable, "-m", "bacalhau", *args], capture_output=True, text=True,
            input=input, timeout=timeout, env=self.env(), cwd=cwd,
        )

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(method, self.url + path, body)


@pytest.fixture
def bacalhau_server(tmp_path: Path) -> Iterator[ServeProcess]:
    """A running `bacalhau serve --orchestrator --compute` (real process, real HTTP)."""
    server = ServeProcess(data_dir=tmp_path / "node")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 protocol server (moto_server) on 127.0.0.1: scripts/test.sh's, or our own."""
    from tests.s3server import ENDPOINT_ENV, start_moto

    if os.environ.get(ENDPOINT_ENV):
        yield os.environ[ENDPOINT_ENV].rstrip("/")
        return
    endpoint, proc = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fake AWS credentials in the environment (inherited by serve children) and a client
    of the S3 server; see tests/s3server.py."""
    import boto3

    from bacalhau import s3client
    from tests.s3server import FAKE_AWS_ENV, S3Env

    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    s3client.reset()
    client = boto3.session.Session().client("s3", endpoint_url=s3_endpoint,
                                            region_name="us-east-1")
    yield S3Env(s3_endpoint, client)
    s3client.reset()
