"""Execution logs: offsets across stdout and stderr, complete lines, Done, waiting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bacalhau.compute.logs import (
    STDERR,
    STDOUT,
    LogHub,
    LogReader,
    join_offset,
    read_logs,
    split_offset,
)

pytestmark = pytest.mark.unit


def test_offsets_and_complete_lines(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_bytes(b"one\ntwo\npart")
    (tmp_path / "stderr").write_bytes(b"err1\n")
    chunk = read_logs(tmp_path, 0, final=False)
    assert chunk.lines == [(STDOUT, "one"), (STDOUT, "two"), (STDERR, "err1")]
    assert split_offset(chunk.offset) == (8, 5)
    assert chunk.exhausted
    assert read_logs(tmp_path, chunk.offset, final=False).lines == []
    final = read_logs(tmp_path, chunk.offset, final=True)
    assert final.lines == [(STDOUT, "part")]
    assert split_offset(final.offset) == (12, 5)
    assert split_offset(join_offset(7, 9)) == (7, 9)


def test_reply_size_is_bounded(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_bytes(b"a" * 9 + b"\n" + b"b" * 9 + b"\n")
    first = read_logs(tmp_path, 0, final=True, max_bytes=12)
    assert first.lines == [(STDOUT, "a" * 9)] and not first.exhausted
    second = read_logs(tmp_path, first.offset, final=True, max_bytes=12)
    assert second.lines == [(STDOUT, "b" * 9)] and second.exhausted


async def test_reader_waits_for_output_and_reports_done(tmp_path: Path) -> None:
    hub = LogHub()
    state = {"terminal": False}
    reader = LogReader(hub, lambda _eid: tmp_path, lambda _eid: state["terminal"])
    out = tmp_path / "stdout"
    out.write_text("first\n")

    reply = await reader.read("e-1", 0)
    assert reply["Lines"] == [{"Type": 1, "Line": "first"}] and not reply["Done"]
    assert (await reader.read("e-1", reply["Offset"], follow=False))["Done"]

    waiting = asyncio.ensure_future(reader.read("e-1", reply["Offset"], wait_seconds=30))
    await asyncio.sleep(0)  # let the reader reach its wait
    assert not waiting.done()
    with out.open("a") as f:
        f.write("second\n")
    hub.notify("e-1")
    second = await asyncio.wait_for(waiting, 5)
    assert second["Lines"] == [{"Type": 1, "Line": "second"}] and not second["Done"]

    waiting = asyncio.ensure_future(reader.read("e-1", second["Offset"], wait_seconds=30))
    await asyncio.sleep(0)
    state["terminal"] = True
    hub.notify("e-1")
    last = await asyncio.wait_for(waiting, 5)
    assert last["Lines"] == [] and last["Done"]


async def test_wait_times_out_without_output(tmp_path: Path) -> None:
    reader = LogReader(LogHub(), lambda _eid: tmp_path, lambda _eid: False)
    reply = await reader.read("e-1", 0, wait_seconds=0.05)
    assert reply == {"Lines": [], "Offset": 0, "Done": False}


async def test_watcher_wakes_waiting_reader_while_running(tmp_path: Path) -> None:
    hub = LogHub()
    reader = LogReader(hub, lambda _eid: tmp_path, lambda _eid: False)
    out = tmp_path / "stdout"
    async with hub.watching("e-1", [out, tmp_path / "stderr"]):
        waiting = asyncio.ensure_future(reader.read("e-1", 0, wait_seconds=30))
        await asyncio.sleep(0)
        out.write_text("written by the executor\n")  # no explicit notify
        reply = await asyncio.wait_for(waiting, 5)
    assert reply["Lines"] == [{"Type": 1, "Line": "written by the executor"}]
