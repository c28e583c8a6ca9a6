"""Spec transforms applied on submit, before validation: they turn older spellings of a job
into the current v1 shape, as Bacalhau's orchestrator does.

`legacy_wasm_modules`: WASM engine params once carried `EntryModule` and `ImportModules` as full
InputSource objects (and `EntryPoint` for the function name). Today both are *target paths*
of task inputs. Such modules become inputs at `/wasm/entry.wasm` and
`/wasm/imports/module_<i>.wasm` (unless they name a target) and the params point at them.
"""

from __future__ import annotations

from typing import Any

from bacalhau.models import InputSource, Job, Task

ENTRY_TARGET = "/wasm/entry.wasm"
IMPORT_TARGET = "/wasm/imports/module_{index}.wasm"


_MISSING = object()


def _pop_param(params: dict[str, Any], name: str) -> Any:
    """Remove a param whatever its spelling; `_MISSING` when absent."""
    for key in list(params):
        if key.lower() == name.lower():
            return params.pop(key)
    return _MISSING


def _as_input(task: Task, value: dict[str, Any], default_target: str, where: str) -> str:
    source = InputSource.from_dict(value, where)
    if not source.target:
        source.target = default_target
    if all(existing.target != source.target for existing in task.input_sources):
        task.input_sources.append(source)
    return source.target


def legacy_wasm_modules(job: Job) -> list[str]:
    """Rewrite legacy WASM module params in place; returns warnings for the submitter."""
    warnings: list[str] = []
    for ti, task in enumerate(job.tasks):
        if task.engine.type.lower() != "wasm":
            continue
        params = task.engine.params
        where = f"Tasks[{ti}].Engine.Params"
        value = _pop_param(params, "EntryModule")
        if value is not _MISSING:
            if isinstance(value, dict):
                value = _as_input(task, value, ENTRY_TARGET, f"{where}.EntryModule")
                warnings.append(
                    f"{where}.EntryModule as an input source is deprecated: it was added as an "
                    f"input at {value}; set EntryModule to an input's target path instead"
                )
            params["EntryModule"] = value
        values = _pop_param(params, "ImportModules")
        if values is not _MISSING:
            if isinstance(values, list):
                values = [
                    _as_input(task, v, IMPORT_TARGET.format(index=i), f"{where}.ImportModules[{i}]")
                    if isinstance(v, dict) else v
                    for i, v in enumerate(values)
                ]
            params["ImportModules"] = values
        entry_point = _pop_param(params, "EntryPoint")
        if entry_point is not _MISSING:
            params["Entrypoint"] = entry_point
    return warnings
