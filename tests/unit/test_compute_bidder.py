"""Capacity probes and the bidder: accept when everything is installed and fits, else reject
with every reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.compute.bidder import Bidder
from bacalhau.compute.capacity import (
    DEFAULT_JOB_CPU,
    DEFAULT_JOB_MEMORY,
    CapacityTracker,
    allocated_capacity,
    probe_memory,
    probe_totals,
)
from bacalhau.config import Config
from bacalhau.errors import ConfigError
from bacalhau.models import (
    Execution,
    InputSource,
    Job,
    NetworkConfig,
    Resources,
    ResourcesConfig,
    RunCommandResult,
    SpecConfig,
    Task,
)
from bacalhau.publishers.noop import NoopPublisher
from bacalhau.storage.inline import InlineStorage
from bacalhau.storage.local import LocalStorage

pytestmark = pytest.mark.unit


class CheckingExecutor:
    """A test engine named `test` whose check reports `Params.Problems`."""

    name = "test"

    def is_installed(self) -> bool:
        return True

    def check(self, engine: SpecConfig) -> list[str]:
        return list(engine.param("Problems") or [])

    async def run(self, request: object) -> RunCommandResult:  # pragma: no cover - unused
        raise AssertionError("the bidder never runs anything")

    async def cancel(self, execution_id: str) -> None:  # pragma: no cover - unused
        pass


def _execution(task: Task) -> Execution:
    job = Job(id="j-1", name="j", type="batch", tasks=[task])
    return Execution(id="e-1", job_id=job.id, job=job)


def _bidder(tmp_path: Path, max_job: Resources, config: Config | None = None) -> Bidder:
    local = LocalStorage([f"{tmp_path}/allowed/**", f"{tmp_path}/allowed"])
    storages = {"inline": InlineStorage(), "local": local, "localdirectory": local}
    return Bidder(config or Config(), {"test": CheckingExecutor()}, storages,
                  {"noop": NoopPublisher()}, max_job)


def test_probes_and_allocated_capacity(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree: 10 kB\nMemTotal:  2048 kB\n")
    assert probe_memory(meminfo) == 2048 * 1024
    totals = probe_totals(tmp_path / "not" / "yet")
    assert totals.cpu >= 1 and totals.disk > 0
    config = Config({"Compute": {"AllocatedCapacity": {"CPU": "50%", "Memory": "4Gb",
                                                       "Disk": "10%", "GPU": "1"}}})
    got = allocated_capacity(config, Resources(cpu=8, memory=16 * 10**9, disk=1000, gpu=2))
    assert got.as_tuple() == (4.0, 4 * 10**9, 100, 1)
    default = allocated_capacity(Config(), Resources(cpu=10, memory=1000, disk=1000))
    assert default.as_tuple() == (8.0, 800, 800, 0)
    with pytest.raises(ConfigError, match=r"Compute\.AllocatedCapacity\.CPU"):
        allocated_capacity(Config({"Compute": {"AllocatedCapacity": {"CPU": "lots"}}}), totals)


def test_tracker_fits_and_releases() -> None:
    tracker = CapacityTracker(Resources(cpu=1, memory=1000))
    assert tracker.try_allocate("a", Resources(cpu=0.6, memory=100))
    assert not tracker.try_allocate("b", Resources(cpu=0.6, memory=100))
    assert tracker.available().as_tuple() == (0.4, 900, 0, 0)
    tracker.release("a")
    assert tracker.try_allocate("b", Resources(cpu=0.6, memory=100))
    assert not tracker.can_ever_fit(Resources(cpu=2))


async def test_accepts_and_applies_default_resources(tmp_path: Path) -> None:
    bidder = _bidder(tmp_path, Resources(cpu=1, memory=10**9, disk=10**9))
    data = "data:text/plain;base64,aGVsbG8="
    task = Task(name="main", engine=SpecConfig("test"), publisher=SpecConfig("noop"),
                input_sources=[InputSource(SpecConfig("inline", {"URL": data}), target="/in")])
    decision = await bidder.bid(_execution(task))
    assert decision.accepted, decision.reasons
    assert decision.usage.cpu == DEFAULT_JOB_CPU
    assert decision.usage.memory == DEFAULT_JOB_MEMORY
    assert decision.usage.disk == 5  # the inline input's size


async def test_rejects_with_every_reason(tmp_path: Path) -> None:
    config = Config({"Compute": {"Env": {"AllowList": ["SAFE_*"]}},
                     "JobAdmissionControl": {"RejectNetworkedJobs": True}})
    bidder = _bidder(tmp_path, Resources(cpu=1, memory=10**9), config)
    task = Task(
        name="main",
        engine=SpecConfig("test", {"Problems": ["Engine.Params.Image is required"]}),
        publisher=SpecConfig("s3"),
        env={"TOKEN": "env:AWS_SECRET", "OK": "env:SAFE_VALUE"},
        input_sources=[
            InputSource(SpecConfig("ipfs", {"CID": "Qm"}), target="/a"),
            InputSource(SpecConfig("local", {"SourcePath": "/etc"}), target="/b"),
        ],
        resources=ResourcesConfig(cpu="2", memory="2Gb"),
        network=NetworkConfig(type="Host"),
    )
    decision = await bidder.bid(_execution(task))
    assert not decision.accepted
    text = decision.message
    assert text.startswith("rejected bid: ")
    assert "Engine.Params.Image is required" in text
    assert 'does not support the "s3" publisher (installed: noop)' in text
    assert 'does not support "ipfs" input sources' in text
    assert "/etc" in text  # the local allow-list refused the path
    assert "AWS_SECRET" in text and "SAFE_VALUE" not in text
    assert "networked jobs" in text
    assert ("this node does not have enough resources: requested {CPU: 2, Memory: 2.0 GB, "
            "Disk: 0 B}, available {CPU: 1, Memory: 1.0 GB, Disk: 0 B}") in text
    assert len(decision.reasons) == 7


async def test_unknown_engine_and_allowed_local_path(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    bidder = _bidder(tmp_path, Resources(cpu=4, memory=10**10, disk=10**10))
    ok = Task(name="main", engine=SpecConfig("test"), input_sources=[
        InputSource(SpecConfig("localDirectory", {"SourcePath": str(allowed)}), target="/d")])
    assert (await bidder.bid(_execution(ok))).accepted
    rw = Task(name="main", engine=SpecConfig("test"), input_sources=[InputSource(
        SpecConfig("local", {"SourcePath": str(allowed), "ReadWrite": True}), target="/d")])
    assert not (await bidder.bid(_execution(rw))).accepted  # no :rw entry in the allow-list
    docker = Task(name="main", engine=SpecConfig("docker", {"Image": "ubuntu"}))
    decision = await bidder.bid(_execution(docker))
    assert decision.reasons == ['this node does not support the "docker" engine '
                                "(installed: test)"]


class SlowCheckingExecutor(CheckingExecutor):
    """Like `test`, with a bid-time check that (as docker's does) may need I/O."""

    async def check_task(self, task: object) -> list[str]:
        return []


def test_decides_at_once_only_when_no_check_needs_io(tmp_path: Path) -> None:
    bidder = _bidder(tmp_path, Resources(cpu=1, memory=10**9))
    inline = InputSource(SpecConfig("inline", {"URL": "data:,x"}), target="/in")
    local = InputSource(SpecConfig("local", {"SourcePath": f"{tmp_path}/allowed"}),
                        target="/data")

    def task(engine: str, *inputs: InputSource) -> Execution:
        return _execution(Task(name="main", engine=SpecConfig(engine),
                               input_sources=list(inputs)))

    assert bidder.decides_at_once(task("test", inline))  # no check_task; a data URL's size
    assert not bidder.decides_at_once(task("test", inline, local))  # stat() on a thread
    assert bidder.decides_at_once(task("nosuch", inline))  # rejected without asking anyone
    bidder = Bidder(Config(), {"test": SlowCheckingExecutor()}, {"inline": InlineStorage()},
                    {}, Resources(cpu=1, memory=10**9))
    assert not bidder.decides_at_once(task("test", inline))
    SlowCheckingExecutor.BID_CHECKS_ARE_LOCAL = True  # type: ignore[attr-defined]
    try:
        assert bidder.decides_at_once(task("test", inline))
    finally:
        del SlowCheckingExecutor.BID_CHECKS_ARE_LOCAL  # type: ignore[attr-defined]
