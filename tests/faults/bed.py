"""A test bed of hosts: Linux network namespaces joined by a bridge, each running its own
`bacalhau serve`, and the faults a spread-out network lives with.

Layout (all made here as root, all removed by `Bed.close`, even after a failure):

- one namespace `<prefix>-br` holding a bridge `br0`;
- one namespace per host `<prefix>-<name>` holding `lo` (up) and `eth0`, one end of a veth pair
  whose other end (`v-<name>`) sits on the bridge; addresses from 198.18.0.0/15, the range
  set aside for benchmarking (RFC 2544), so nothing here can be confused with a real network;
- a client namespace from which the test talks HTTP to the hosts: worker threads of a
  `ThreadPoolExecutor` enter it with setns(2) (a network namespace is per thread), so the test
  process itself stays where it is.

Faults (every rule lives inside a namespace made here and goes with it; the machine's own
interfaces, qdiscs and firewall are never touched):

- `partition(a, b)` / `partition(a, b, one_way=True)`: iptables DROP inside the hosts'
  namespaces; `heal()` flushes every rule and qdisc the bed added;
- `loss(host, p)`: iptables `statistic --mode random` drop of incoming packets;
- `bandwidth(host, rate)`: a tbf qdisc on the host's `eth0`, inside its namespace;
- `freeze`/`thaw`: SIGSTOP/SIGCONT of the host's serve process; `kill9` and `start` again
  on the same data dir;
- a full disk: `Host(disk_mb=...)` puts the data dir on a tmpfs of that size (mounted under
  the test's temp dir and unmounted on close) and `fill_disk` fills it;
- a skewed clock: `Host(clock_offset="+10m")` runs serve under libfaketime.

`available()` says why the bed cannot run here ("" when it can); tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import http_json

CLONE_NEWNET = 0x40000000
SUBNET = "198.18"
PREFIX_LEN = 15
API_PORT = 1234
P2P_PORT = 4001
PUBLISHER_PORT = 6001
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1")


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def available() -> str:
    """"" when namespaces, veth, bridge, iptables and tc work here; else why not."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "the fault bed needs root (CAP_NET_ADMIN) to make network namespaces"
    for tool in ("ip", "iptables", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (scripts/install_fault_tools.sh installs it)"
    probe = f"bfprobe{os.getpid()}"
    try:
        made = _run("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` failed (no CAP_NET_ADMIN?): {made.stderr.strip()}"
        for cmd in (["ip", "-n", probe, "link", "add", "b0", "type", "bridge"],
                    ["ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-m",
                     "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP"],
                    ["ip", "-n", probe, "link", "set", "lo", "up"],
                    ["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root",
                     "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms"]):
            done = _run(*cmd, check=False)
            if done.returncode != 0:
                return f"`{' '.join(cmd)}` failed in a namespace: {done.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return ""


def sweep_stale() -> list[str]:
    """Delete the namespaces (and end the processes in them) left by an earlier test run that
    was killed before its cleanup (named `bf<pid>x...`, that pid no longer running); returns
    the names deleted. Namespaces of runs still alive are left alone."""
    listed = _run("ip", "netns", "list", check=False).stdout
    gone: list[str] = []
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.match(r"^bf(\d+)x\d+-", name)
        if match is None or Path(f"/proc/{match.group(1)}").exists():
            continue
        for pid in _run("ip", "netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        if _run("ip", "netns", "del", name, check=False).returncode == 0:
            gone.append(name)
    return gone


def faketime_lib() -> str:
    """The path of libfaketime, or "" when it is not installed."""
    return next((p for p in FAKETIME_LIBS if Path(p).exists()), "")


def _enter_netns(name: str) -> None:
    """Move the calling thread into network namespace `name` (setns(2))."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def http_get_file(url: str, dest: Path, timeout: float = 30.0) -> Path:
    with urllib.request.urlopen(url, timeout=timeout) as resp, dest.open("wb") as fh:
        shutil.copyfileobj(resp, fh)
    return dest


@dataclass
class Host:
    """One host: a namespace, an address, a data dir and (once started) a serve process."""

    bed: Bed
    name: str
    index: int
    roles: tuple[str, ...] = ()
    extra_args: list[str] = field(default_factory=list)
    disk_mb: int = 0
    clock_offset: str = ""
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    mounted: bool = False

    @property
    def ns(self) -> str:
        return f"{self.bed.prefix}-{self.name}"

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{self.index // 250}.{self.index % 250 + 2}"

    @property
    def data_dir(self) -> Path:
        return self.bed.base / self.name / "data"

    @property
    def log_path(self) -> Path:
        return self.bed.base / self.name / "serve.log"

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{API_PORT}"

    @property
    def multiaddr(self) -> str:
        return f"/ip4/{self.ip}/tcp/{P2P_PORT}/p2p/{self.node_id}"

    def run_info(self) -> dict[str, str]:
        info: dict[str, str] = {}
        try:
            text = (self.data_dir / "bacalhau.run").read_text()
        except (FileNotFoundError, OSError):
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

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "bacalhau", "--data-dir", str(self.data_dir), "serve",
               *self.roles, "--listen", f"/ip4/{self.ip}/tcp/{P2P_PORT}",
               "-c", f"API.Host={self.ip}", "-c", f"API.Port={API_PORT}",
               "-c", f"Publishers.Types.Local.Port={PUBLISHER_PORT}",
               "-c", f"Publishers.Types.Local.Address={self.ip}", *self.extra_args]
        return ["ip", "netns", "exec", self.ns, *cmd]

    def start(self, timeout: float = 60.0) -> None:
        """Start serve (again, on the same data dir) and wait until it has written its run
        file (and, with an API, answers /agent/alive)."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} still runs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, BACALHAU_DIR=str(self.data_dir), **self.env_extra)
        if self.clock_offset:  # libfaketime preloaded (no `faketime` wrapper: it forks)
            lib = faketime_lib()
            assert lib, "libfaketime is not installed (scripts/install_fault_tools.sh)"
            env.update(LD_PRELOAD=lib, FAKETIME=self.clock_offset,
                       FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        self.bed.wait(self._alive, timeout, f"serve on {self.name} ({self.ip})")

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"serve on {self.name} exited with {self.proc.returncode}: "
                               f"{self.logs()[-3000:]}")
        if not self.run_info():
            return False
        if "--orchestrator" not in self.roles:
            return True
        status, body = self.bed.api(self, "GET", "/api/v1/agent/alive", timeout=1.0)
        return status == 200 and body.get("Status") == "OK"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a frozen process cannot exit
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> int | None:
        return self.stop(signal.SIGKILL)

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def fill_disk(self) -> None:
        """Fill the host's tmpfs data dir to the last byte (a file `filler`)."""
        assert self.disk_mb, f"{self.name} has no disk of its own (Host(disk_mb=...))"
        fd = os.open(self.data_dir / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 16, 512, 1):  # big chunks, then the last bytes
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)

    def free_disk(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "filler").unlink()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sh(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside this host's namespace."""
        return _run("ip", "netns", "exec", self.ns, *cmd, check=check)


class Bed:
    """The bridge, the client namespace and the hosts; `close()` removes every trace."""

    def __init__(self, base: Path, prefix: str = "") -> None:
        self.base = base
        self.prefix = prefix or f"bf{os.getpid()}x{int(time.time() * 1000) % 100000}"
        sweep_stale()
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._index = 0
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        try:
            self._ns(f"{self.prefix}-br")
            _run("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
            _run("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
            _run("ip", "-n", self.bridge_ns, "link", "set", "lo", "up")
            self._plumb("client")
            self.client_host = Host(self, "client", 0)
        except BaseException:
            self.close()
            raise
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bed-client",
                                        initializer=_enter_netns,
                                        initargs=(f"{self.prefix}-client",))

    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-br"

    def _ns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self._namespaces.append(name)

    def _plumb(self, name: str) -> str:
        """A namespace for `name`, its veth to the bridge, its address; returns its IP."""
        ns = f"{self.prefix}-{name}"
        self._ns(ns)
        index = self._index
        self._index += 1
        ip = f"{SUBNET}.{index // 250}.{index % 250 + 2}"
        peer = f"v{index}"
        _run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer,
             "netns", self.bridge_ns)
        _run("ip", "-n", self.bridge_ns, "link", "set", peer, "master", "br0", "up")
        _run("ip", "-n", ns, "addr", "add", f"{ip}/{PREFIX_LEN}", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        return ip

    def add_host(self, name: str, roles: tuple[str, ...], *, extra_args: list[str] | None = None,
                 disk_mb: int = 0, clock_offset: str = "",
                 env: dict[str, str] | None = None) -> Host:
        index = self._index
        self._plumb(name)
        host = Host(self, name, index, roles, list(extra_args or []), disk_mb, clock_offset,
                    dict(env or {}))
        self.hosts[name] = host
        if disk_mb:
            host.data_dir.mkdir(parents=True, exist_ok=True)
            _run("mount", "-t", "tmpfs", "-o", f"size={disk_mb}m", "tmpfs", str(host.data_dir))
            host.mounted = True
        return host

    # -- talking to hosts from the client namespace ------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run `fn(*args)` on a thread inside the client namespace."""
        assert self._pool is not None, "the bed is closed"
        return self._pool.submit(fn, *args).result(timeout=timeout)

    def api(self, host: Host, method: str, path: str, body: Any = None,
            timeout: float = 5.0) -> tuple[int, Any]:
        return self.call(http_json, method, host.url + path, body, timeout,
                         timeout=timeout + 5)

    def download(self, url: str, dest: Path, timeout: float = 30.0) -> Path:
        return self.call(http_get_file, url, dest, timeout, timeout=timeout + 5)

    @staticmethod
    def wait(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.1) -> Any:
        """Poll `condition` until truthy or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except RuntimeError:
                raise
            except Exception as exc:
                last = exc
            time.sleep(interval)  # poll interval of a deadline-bounded wait
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")

    # -- faults ---------------------------------------------------------------------------------

    def partition(self, a: Host, b: Host, *, one_way: bool = False) -> None:
        """Drop traffic between `a` and `b`. One way: what `a` sends to `b` is lost (dropped
        as it enters `b`), what `b` sends reaches `a`; TCP replies ride the dropped way, so a
        connection `b` opens gets its SYN to `a`, and `a`'s SYN-ACK never arrives."""
        b.sh("iptables", "-A", "INPUT", "-s", a.ip, "-j", "DROP")
        if not one_way:
            a.sh("iptables", "-A", "INPUT", "-s", b.ip, "-j", "DROP")

    def loss(self, host: Host, probability: float) -> None:
        host.sh("iptables", "-A", "INPUT", "-m", "statistic", "--mode", "random",
                "--probability", f"{probability}", "-j", "DROP")

    def bandwidth(self, host: Host, rate: str = "1mbit") -> None:
        host.sh("tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate,
                "burst", "32kbit", "latency", "400ms")

    def heal(self) -> None:
        """Remove every partition, loss and bandwidth rule of every host."""
        for host in [self.client_host, *self.hosts.values()]:
            host.sh("iptables", "-F")
            host.sh("tc", "qdisc", "del", "dev", "eth0", "root", check=False)

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process, unmount every tmpfs, delete every namespace (idempotent)."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for host in reversed(list(self.hosts.values())):
            try:
                host.stop(timeout=5)
            except Exception as exc:
                errors.append(f"stop {host.name}: {exc}")
            if host.mounted:
                done = _run("umount", "-l", str(host.data_dir), check=False)
                if done.returncode != 0:
                    errors.append(f"umount {host.data_dir}: {done.stderr.strip()}")
                host.mounted = False
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for ns in reversed(self._namespaces):
            done = _run("ip", "netns", "del", ns, check=False)
            if done.returncode != 0:
                errors.append(f"ip netns del {ns}: {done.stderr.strip()}")
        if errors:
            raise RuntimeError("fault bed cleanup: " + "; ".join(errors))
