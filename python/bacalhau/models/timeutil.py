"""Time in the two wire forms: int Unix nanoseconds and RFC 3339 strings."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ns() -> int:
    return time.time_ns()


# (seconds, formatted seconds) of the last call: most calls fall in the same second, and
# formatting the date part is the expensive step.
_last_second: tuple[int, str] = (-1, "")


def rfc3339(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds, UTC, as Go's time.RFC3339Nano writes it."""
    global _last_second
    if ns is None:
        ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    cached = _last_second
    if cached[0] == seconds:
        base = cached[1]
    else:
        base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, base)
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def parse_rfc3339(value: str) -> int:
    """Nanoseconds since the epoch for an RFC 3339 string (0 for an empty string)."""
    if not value or value.startswith("0001-01-01"):
        return 0
    text = value.replace("Z", "+00:00")
    frac_ns = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for ch in rest:
            if ch.isdigit():
                digits += ch
            else:
                break
        tz = rest[len(digits):]
        frac_ns = int((digits + "000000000")[:9])
        text = head + tz
    dt = datetime.fromisoformat(text)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


ZERO_TIME = "0001-01-01T00:00:00Z"
