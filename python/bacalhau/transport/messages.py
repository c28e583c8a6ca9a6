"""The message envelope of reference §1.3: one version byte, a big-endian CRC-32 of the rest,
then JSON `{"metadata": {...}, "payload": {...}}`. Message type names follow Bacalhau's NCL.

A `Batch` envelope (issue 15: one frame per peer per turn) carries several envelopes'
`{"metadata", "payload"}` documents in order in `payload.Messages`; its reply is `{"OK": true,
"Results": [reply, ...]}`, one plain reply per message, so that a refused message does not
refuse the others. A peer that does not know `Batch` refuses it as a whole, and the sender
then sends the messages one by one.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from bacalhau.errors import TransportError
from bacalhau.models.timeutil import rfc3339

ENVELOPE_VERSION_JSON = 1

ASK_FOR_BID = "AskForBid"
BID_ACCEPTED = "BidAccepted"
BID_REJECTED = "BidRejected"
CANCEL_EXECUTION = "CancelExecution"
EXECUTION_LOGS = "ExecutionLogs"
BID_RESULT = "BidResult"
RUN_RESULT = "RunResult"
COMPUTE_ERROR = "ComputeError"
NODE_INFO = "NodeInfo"
HEARTBEAT = "Heartbeat"
NODE_INFO_REQUEST = "NodeInfoRequest"  # orchestrator -> compute; reply {"OK", "NodeInfo"}
BATCH = "Batch"
FRAME_MAX_MESSAGES = 64
"""The most messages one Batch frame carries."""

KEY_TYPE = "Bacalhau-Type"
KEY_SOURCE = "Bacalhau-Source"
KEY_EVENT_TIME = "Bacalhau-EventTime"
KEY_MESSAGE_UUID = "Bacalhau-MessageUUID"
KEY_ENCODING = "Bacalhau-PayloadEncoding"


@dataclass(slots=True)
class Envelope:
    type: str
    payload: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)


def encode(
    msg_type: str, payload: dict[str, Any], metadata: dict[str, str] | None = None,
    *, source: str = "",
) -> bytes:
    meta = {KEY_TYPE: msg_type, KEY_ENCODING: "json", KEY_EVENT_TIME: rfc3339(),
            KEY_MESSAGE_UUID: str(uuid.uuid4())}
    if source:
        meta[KEY_SOURCE] = source
    if metadata:
        meta.update(metadata)
    # PASSTHROUGH_DATACLASS: models must go through to_dict (wire names), not orjson's
    # native dataclass encoding (snake_case attribute names)
    body = orjson.dumps({"metadata": meta, "payload": payload},
                        default=lambda o: o.to_dict(), option=orjson.OPT_PASSTHROUGH_DATACLASS)
    return struct.pack(">BI", ENVELOPE_VERSION_JSON, zlib.crc32(body)) + body


def decode(data: bytes) -> Envelope:
    if len(data) < 5:
        raise TransportError("message too short to hold an envelope")
    version, crc = struct.unpack(">BI", data[:5])
    body = data[5:]
    if version != ENVELOPE_VERSION_JSON:
        raise TransportError(f"unsupported envelope version {version}")
    if zlib.crc32(body) != crc:
        raise TransportError("message checksum mismatch: the message was corrupted in transit")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TransportError(f"message body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("payload"), dict):
        raise TransportError("message body lacks a payload object")
    meta = doc.get("metadata") or {}
    msg_type = meta.get(KEY_TYPE) or meta.get("Type") or ""
    return Envelope(type=msg_type, payload=doc["payload"], metadata=meta)


def reply_ok(**extra: Any) -> bytes:
    return orjson.dumps({"OK": True, **extra}, default=lambda o: o.to_dict(),
                        option=orjson.OPT_PASSTHROUGH_DATACLASS)


def reply_error(message: str) -> bytes:
    return orjson.dumps({"OK": False, "Error": message})


def parse_reply(data: bytes) -> dict[str, Any]:
    """Decode a plain JSON reply; raises TransportError when the peer reported an error."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise TransportError(f"peer sent a malformed reply: {exc}") from exc
    if not isinstance(doc, dict):
        raise TransportError("peer sent a malformed reply")
    if doc.get("OK") is False:
        raise TransportError(str(doc.get("Error") or "peer reported an error"))
    return doc


def encode_batch(envelopes: list[bytes], *, source: str = "") -> bytes:
    """One `Batch` envelope holding the given encoded envelopes, in order."""
    docs = [orjson.Fragment(env[5:]) for env in envelopes]
    return encode(BATCH, {"Messages": docs}, source=source)


def batch_items(envelope: Envelope) -> list[Envelope]:
    """The envelopes inside a `Batch` envelope."""
    items = envelope.payload.get("Messages")
    if not isinstance(items, list):
        raise TransportError("Batch message lacks its Messages list")
    out = []
    for doc in items:
        if not isinstance(doc, dict) or not isinstance(doc.get("payload"), dict):
            raise TransportError("a message in a Batch lacks a payload object")
        meta = doc.get("metadata") or {}
        out.append(Envelope(type=meta.get(KEY_TYPE) or meta.get("Type") or "",
                            payload=doc["payload"], metadata=meta))
    return out


def reply_batch(replies: list[bytes]) -> bytes:
    """The reply to a `Batch`: each message's own reply, in order."""
    return orjson.dumps({"OK": True, "Results": [orjson.Fragment(r) for r in replies]})


def parse_batch_reply(data: bytes, count: int) -> list[dict[str, Any]]:
    """The per-message replies of a `Batch` reply; raises TransportError when the peer refused
    the batch as a whole (e.g. it does not know `Batch`) or answered the wrong count."""
    doc = parse_reply(data)
    results = doc.get("Results")
    if not isinstance(results, list) or len(results) != count:
        raise TransportError("peer answered a Batch without one result per message")
    return [r if isinstance(r, dict) else {"OK": False, "Error": "malformed result"}
            for r in results]
