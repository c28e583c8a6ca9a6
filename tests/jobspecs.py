"""Job specs used across tests: the shipped word-count WASM module and small hostile modules,
delivered as inline data: URLs so that a job needs nothing but the API."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent.parent / "python" / "bacalhau" / "assets"


def data_url(content: bytes, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def wasm_module(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def wordcount_job(text: str = "hello wasm world\nsecond line\n", *, name: str = "",
                  publisher: str = "local", timeout: int = 0, queue_timeout: int = 0,
                  module: str = "wordcount.wasm", params: list[str] | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A batch job that counts lines, words and bytes of `text` into /outputs/count.txt."""
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {
            "EntryModule": f"/wasm/{module}",
            "Parameters": params if params is not None else ["/inputs/input.txt"],
        }},
        "InputSources": [
            {"Source": {"Type": "inline", "Params": {
                "URL": data_url(wasm_module(module), "application/wasm")}},
             "Alias": "module", "Target": f"/wasm/{module}"},
            {"Source": {"Type": "inline", "Params": {
                "URL": data_url(text.encode(), "text/plain")}},
             "Alias": "input", "Target": "/inputs/input.txt"},
        ],
        "Publisher": {"Type": publisher},
        "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
    }
    timeouts = {k: v for k, v in (("ExecutionTimeout", timeout),
                                  ("QueueTimeout", queue_timeout)) if v}
    if timeouts:
        task["Timeouts"] = timeouts
    job: dict[str, Any] = {"Type": "batch", "Count": 1, "Tasks": [task]}
    if name:
        job["Name"] = name
    if extra:
        job.update(extra)
    return job


def expected_count(text: str) -> str:
    return f"{text.count(chr(10))} {len(text.split())} {len(text.encode())}\n"
