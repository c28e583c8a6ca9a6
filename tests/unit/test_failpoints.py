"""Failpoints (bacalhau.failpoints): the BACALHAU_FAILPOINTS parser, each action, and the
effect of a point where it sits (the planner's commit stays, its send does not happen; a
crash is a SIGKILL of the process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bacalhau import failpoints
from bacalhau.failpoints import Action, FailpointError, parse
from bacalhau.models import Event, Topic
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.planner import Planner
from bacalhau.store.jobstore import JobStore
from tests.factories import make_evaluation, make_execution, make_job

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_failpoints() -> Iterator[None]:
    failpoints.configure("")
    yield
    failpoints.configure("")


def test_parse_every_action() -> None:
    points = parse("planner.after_commit=crash; publish.mid=delay(250);"
                   "merge.mid=error;download.mid=off;compute.after_commit=crash(3)")
    assert points == {"planner.after_commit": Action("crash"),
                      "compute.after_commit": Action("crash", at_hit=3),
                      "publish.mid": Action("delay", 250),
                      "merge.mid": Action("error")}
    assert parse("") == {} and parse(" ; ") == {}


@pytest.mark.parametrize(("spec", "says"), [
    ("planner.after_commit", "not name=action"),
    ("=crash", "not name=action"),
    ("planer.after_commit=crash", "unknown failpoint 'planer.after_commit'"),
    ("publish.mid=explode", "crash, crash(N), error, off or delay(ms)"),
    ("publish.mid=delay(-1)", "crash, crash(N), error, off or delay(ms)"),
    ("publish.mid=delay(ms)", "crash, crash(N), error, off or delay(ms)"),
    ("publish.mid=crash(0)", "crash, crash(N), error, off or delay(ms)"),
])
def test_parse_refuses_with_a_clear_error(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match="BACALHAU_FAILPOINTS") as err:
        parse(spec)
    assert says in str(err.value)


def test_off_is_a_no_op_and_error_raises() -> None:
    for name in failpoints.POINTS:
        failpoints.hit(name)  # nothing configured: nothing happens
    failpoints.configure("merge.mid=error")
    failpoints.hit("publish.mid")  # another point: nothing
    with pytest.raises(FailpointError, match=r"failpoint merge\.mid fired"):
        failpoints.hit("merge.mid")


async def test_async_delay_and_error() -> None:
    failpoints.configure("publish.mid=delay(50);download.mid=error")
    started = time.monotonic()
    await failpoints.hit_async("publish.mid")
    assert time.monotonic() - started >= 0.05
    with pytest.raises(FailpointError):
        await failpoints.hit_async("download.mid")


@pytest.mark.parametrize("name", failpoints.POINTS)
def test_crash_is_a_sigkill_read_from_the_environment(name: str) -> None:
    code = ("from bacalhau import failpoints\n"
            "print('before', flush=True)\n"
            f"failpoints.hit({name!r})\n"
            "print('after', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"BACALHAU_FAILPOINTS": f"{name}=crash",
                                           "PATH": "/usr/bin:/bin"})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout == "before\n"


def test_crash_n_passes_the_first_hits() -> None:
    code = ("from bacalhau import failpoints\n"
            "for i in range(5):\n"
            "    print(i, flush=True)\n"
            "    failpoints.hit('publish.mid')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={"BACALHAU_FAILPOINTS": "publish.mid=crash(3)",
                                           "PATH": "/usr/bin:/bin"})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.split() == ["0", "1", "2"]


def test_a_bad_setting_stops_the_process_naming_it() -> None:
    done = subprocess.run([sys.executable, "-c", "import bacalhau.failpoints"],
                          capture_output=True, text=True, timeout=60,
                          env={"BACALHAU_FAILPOINTS": "nope=crash", "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "unknown failpoint 'nope'" in done.stderr


def test_planner_after_commit_keeps_the_commit_and_skips_the_send(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    try:
        job, _ = store.create_or_update_job(make_job())
        evaluation = make_evaluation(job)
        store.create_evaluation(evaluation)
        woke: list[int] = []
        planner = Planner(store, node_id="n-req", on_outbox=lambda: woke.append(1))
        plan = Plan(evaluation, job)
        execution = make_execution(job, "n-1")
        execution.job = job
        plan.add_execution(execution, Event.new(Topic.SCHEDULING, "on n-1"))
        failpoints.configure("planner.after_commit=error")
        with pytest.raises(FailpointError):
            planner.apply(plan)
        # the dispatcher is woken by the commit; it sends from its own task, which a process
        # crashing here never lets run: the row stays pending, the restart sends it
        assert woke == [1]
        assert store.get_execution(execution.id) is not None  # the commit stands
        assert len(store.pending_outbox()) == 1  # the message waits in the outbox
    finally:
        store.close()
