"""Log streaming: pick an execution of a job and read its logs from its compute node with
`ExecutionLogs` requests, following the returned `Offset` until the node says `Done`.

With `follow` the node may hold each request up to `WaitSeconds` for new lines; without it the
stream ends at the first empty page (or `Done`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from bacalhau.errors import NotFoundError, TransportError
from bacalhau.models import Execution
from bacalhau.transport import PROTOCOL_COMPUTE, Transport, messages

WAIT_SECONDS = 5.0


def pick_execution(job_id: str, executions: list[Execution], execution_id: str = "") -> Execution:
    """The execution named (ID or prefix), else the most recently modified non-discarded one."""
    if execution_id:
        found = [e for e in executions if e.id == execution_id]
        if not found:
            found = [e for e in executions if e.id.startswith(execution_id)]
        if len(found) != 1:
            raise NotFoundError(
                f"execution {execution_id} not found in job {job_id}"
                if not found else f"multiple executions found for id {execution_id}")
        return found[0]
    live = [e for e in executions if not e.is_discarded()]
    if not live:
        raise NotFoundError(
            f"job {job_id} has no execution to read logs from yet",
            hint="wait until the job is scheduled on a node, then try again")
    return max(live, key=lambda e: (e.modify_time, e.id))


def _parse(data: bytes) -> dict:
    if data[:1] == b"{":
        return messages.parse_reply(data)
    try:
        return messages.decode(data).payload
    except TransportError:
        return orjson.loads(data) if data else {}


async def stream_execution_logs(
    transport: Transport,
    execution: Execution,
    *,
    follow: bool,
    tail: bool = False,
    wait_seconds: float = WAIT_SECONDS,
    request_timeout: float = 10.0,
) -> AsyncIterator[tuple[int, str]]:
    """Yield `(1 stdout | 2 stderr, line)` from the execution's node."""
    offset = 0
    first = True
    while True:
        payload = {"ExecutionID": execution.id, "Offset": offset, "Follow": follow,
                   "WaitSeconds": wait_seconds if follow else 0, "Tail": tail and first}
        data = await transport.request(
            execution.node_id, PROTOCOL_COMPUTE,
            messages.encode(messages.EXECUTION_LOGS, payload, source=transport.node_id),
            timeout=request_timeout + (wait_seconds if follow else 0))
        reply = _parse(data)
        lines = reply.get("Lines") or []
        for item in lines:
            yield int(item.get("Type", 1)), str(item.get("Line", ""))
        offset = int(reply.get("Offset", offset) or offset)
        if reply.get("Done") or (not follow and not lines):
            return
        first = False
