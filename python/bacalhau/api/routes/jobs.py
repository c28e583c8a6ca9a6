"""`/api/v1/orchestrator/jobs` (reference §3.1): submit, diff, list, describe, stop, rerun, and a
job's history, executions, versions and results. The logs WebSocket lives in `logs.py`.

Every `/jobs/{id}/...` handler resolves `{id}` (name, full id or id prefix) with
`Requester.get_job` first, so lookups and their 404 / "multiple jobs found" errors are the same
everywhere.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from bacalhau.config import Config
from bacalhau.errors import NotFoundError, ValidationError
from bacalhau.models import Job, JobHistory
from bacalhau.models.job import RESERVED_META_PREFIX
from bacalhau.s3client import presign_results_async

from ..middleware import json_response
from ..paging import PagingToken, next_page_token
from ..state import CONFIG, HANDLER_TIMEOUT, requester_of
from . import history_wait
from .binding import (
    INT64_MAX,
    BindError,
    body_bool,
    body_int,
    body_object,
    body_str,
    list_namespace_of,
    namespace_of,
    query_bool,
    query_choice,
    query_int,
    query_list,
    query_str,
    read_json_object,
)

PREFIX = "/api/v1/orchestrator/jobs"

JOB_ORDER = ("created_at", "modified_at")
EXECUTION_ORDER = ("created_at", "modified_at")
HISTORY_EVENT_TYPES = ("all", "job", "execution")
INCLUDES = ("history", "executions")
DEFAULT_HISTORY_LIMIT = 100

# Client identity headers, recorded in the job's Meta by the orchestrator.
_CLIENT_META_HEADERS = {
    "X-Bacalhau-InstallationID": "bacalhau.org/client.installation.id",
    "X-Bacalhau-InstanceID": "bacalhau.org/client.instance.id",
}
# Server-managed fields left out of a spec diff.
_NOT_SPEC = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")


def setup(app: web.Application) -> None:
    router = app.router
    router.add_put(PREFIX, put_job)
    router.add_post(PREFIX, put_job)
    router.add_get(PREFIX, list_jobs)
    router.add_put(PREFIX + "/diff", diff_job)
    router.add_get(PREFIX + "/{id}", get_job)
    router.add_delete(PREFIX + "/{id}", stop_job)
    router.add_put(PREFIX + "/{id}/rerun", rerun_job)
    router.add_get(PREFIX + "/{id}/history", job_history)
    router.add_get(PREFIX + "/{id}/executions", job_executions)
    router.add_get(PREFIX + "/{id}/versions", job_versions)
    router.add_get(PREFIX + "/{id}/results", job_results)


async def _job_from_body(request: web.Request, where: str) -> tuple[Job, dict[str, Any]]:
    body = await read_json_object(request, where)
    data = body_object(body, "Job", where)
    try:
        job = Job.from_dict(data, "Job")
    except ValidationError as exc:
        raise BindError(str(exc)) from None
    return job, body


def _client_meta(request: web.Request) -> dict[str, str]:
    return {
        key: request.headers[header]
        for header, key in _CLIENT_META_HEADERS.items()
        if request.headers.get(header)
    }


def _resolve(request: web.Request) -> Job:
    return requester_of(request).get_job(request.match_info["id"], namespace_of(request))


# ---------------------------------------------------------------------------------- submit


async def put_job(request: web.Request) -> web.Response:
    """PUT/POST /jobs `{"Job", "Force"}` -> `{"JobID", "EvaluationID", "Warnings"}`."""
    requester_of(request).admit()  # an overloaded requester refuses before parsing the job
    job, body = await _job_from_body(request, "PutJobRequest")
    force = body_bool(body, "Force")
    result = await requester_of(request).submit_job(
        job, force=force, client_meta=_client_meta(request), owned=True)
    return json_response({
        "JobID": result.job_id,
        "EvaluationID": result.evaluation_id,
        "Warnings": list(result.warnings or []),
    })


async def diff_job(request: web.Request) -> web.Response:
    """PUT /jobs/diff `{"Job"}` -> `{"Diff", "Warnings"}`: the stored job of the same Name
    against the given spec, as a unified diff of their YAML (empty when they match)."""
    job, _ = await _job_from_body(request, "DiffJobRequest")
    job.normalize()
    if not job.name:
        raise ValidationError("Job.Name: required to find the stored job to compare with")
    warnings = job.strip_reserved_meta()
    job.validate()
    try:
        stored: Job | None = requester_of(request).get_job(job.name, job.namespace)
    except NotFoundError:
        stored = None
    # The orchestrator stores jobs with JobDefaults.<Type>.Task.Resources filled in; fill
    # both sides alike so that defaults never show up as changes.
    config = request.app[CONFIG]
    for side in (job, stored):
        if side is not None:
            _apply_resource_defaults(side, config)
    return json_response({"Diff": job_spec_diff(stored, job), "Warnings": warnings})


def _apply_resource_defaults(job: Job, config: Config) -> None:
    defaults = config.get(f"JobDefaults.{job.type.capitalize()}.Task.Resources")
    if not isinstance(defaults, dict):
        return
    lowered = {str(k).lower(): str(v).lower() for k, v in defaults.items()}
    for task in job.tasks:
        if not task.resources.cpu and lowered.get("cpu"):
            task.resources.cpu = lowered["cpu"]
        if not task.resources.memory and lowered.get("memory"):
            task.resources.memory = lowered["memory"]


def _spec_yaml(job: Job | None) -> list[str]:
    if job is None:
        return []
    spec = {k: v for k, v in job.to_dict().items() if k not in _NOT_SPEC}
    spec["Meta"] = {
        k: v for k, v in spec.get("Meta", {}).items() if not k.startswith(RESERVED_META_PREFIX)
    }
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False).splitlines(True)


def job_spec_diff(stored: Job | None, new: Job) -> str:
    """A unified diff of two job specs, server-managed fields left out."""
    name = new.name or "job"
    lines = difflib.unified_diff(
        _spec_yaml(stored), _spec_yaml(new),
        fromfile=f"{name} (stored, version {stored.version})" if stored else "/dev/null",
        tofile=f"{name} (new)",
    )
    return "".join(lines)


# ---------------------------------------------------------------------------------- list & get


async def list_jobs(request: web.Request) -> web.Response:
    """GET /jobs -> `{"Items": [Job], "NextToken"}`; limit 0 means no limit."""
    namespace = list_namespace_of(request)
    labels = query_list(request, "labels")
    token_text = query_str(request, "next_token")
    if token_text:
        token = PagingToken.decode(token_text)
        order_by, reverse, limit, offset = token.sort_by, token.reverse, token.limit, token.offset
        if order_by not in JOB_ORDER:
            raise BindError(f"next_token: invalid paging token {token_text!r}")
    else:
        order_by = query_choice(request, "order_by", JOB_ORDER, "created_at")
        reverse = query_bool(request, "reverse")
        limit = query_int(request, "limit")
        offset = 0
    items, more = requester_of(request).list_jobs(
        namespace, limit, offset, order_by, reverse, labels
    )
    return json_response({
        "Items": [job.to_dict() for job in items],
        "NextToken": next_page_token(
            sort_by=order_by, reverse=reverse, limit=limit, offset=offset,
            returned=len(items), more=bool(more) and limit > 0,
        ),
    })


def _includes(request: web.Request) -> set[str]:
    out: set[str] = set()
    for raw in request.query.getall("include", []):
        for part in raw.split(","):
            value = part.strip().lower()
            if not value:
                continue
            if value not in INCLUDES:
                raise BindError(
                    f"include: unknown value {part.strip()!r} (use history, executions)"
                )
            out.add(value)
    return out


async def get_job(request: web.Request) -> web.Response:
    """GET /jobs/{id}?include=history,executions -> `{"Job", "History"?, "Executions"?}`."""
    includes = _includes(request)
    job_version = query_int(request, "job_version")
    limit = query_int(request, "limit")
    requester = requester_of(request)
    if not includes and not job_version:  # the common poll: the stored JSON as it is
        data = requester.get_job_json(request.match_info["id"], namespace_of(request))
        return web.Response(body=b'{"Job":' + data + b"}", content_type="application/json")
    job = requester.get_job(request.match_info["id"], namespace_of(request), job_version)
    out: dict[str, Any] = {"Job": job.to_dict()}
    if "history" in includes:
        history_limit = limit or DEFAULT_HISTORY_LIMIT
        items, next_offset = requester.job_history(job.id, offset=0, limit=history_limit)
        out["History"] = {
            "Items": [h.to_dict() for h in items],
            "NextToken": _history_token(job, history_limit, len(items), next_offset),
        }
    if "executions" in includes:
        executions = requester.job_executions(job.id, job_version=job_version)
        out["Executions"] = {"Items": [e.to_dict() for e in executions], "NextToken": ""}
    return json_response(out)


# ---------------------------------------------------------------------------------- stop & rerun


async def stop_job(request: web.Request) -> web.Response:
    """DELETE /jobs/{id}; the reason comes from the JSON body `{"reason"}` (Go CLI) or
    `?reason=` (swagger, bacalhau-sdk)."""
    body = await read_json_object(request, "StopJobRequest", required=False)
    query_reason = query_str(request, "reason")
    if query_reason == "None":  # bacalhau-sdk's `stop(job_id)` sends Python's None as text
        query_reason = ""
    reason = body_str(body, "reason") or query_reason
    evaluation_id = await requester_of(request).stop_job(
        request.match_info["id"], namespace_of(request), reason
    )
    return json_response({"EvaluationID": evaluation_id or ""})


async def rerun_job(request: web.Request) -> web.Response:
    """PUT /jobs/{id}/rerun `{"JobVersion", "Reason"}`."""
    body = await read_json_object(request, "RerunJobRequest", required=False)
    job_version = body_int(body, "JobVersion")
    reason = body_str(body, "Reason")
    requester = requester_of(request)
    job = _resolve(request)
    rerun = getattr(requester, "rerun_job", None)
    if rerun is None:
        rerun = _rerun_by_resubmitting(request)
    result = await rerun(job.id, job_version=job_version, reason=reason)
    return json_response({
        "EvaluationID": result.evaluation_id,
        "JobID": result.job_id,
        "JobVersion": result.job_version,
        "Warnings": list(result.warnings or []),
    })


@dataclass(slots=True)
class _RerunResult:
    evaluation_id: str
    job_id: str
    job_version: int
    warnings: list[str]


_NOT_RERUNNABLE = ("Pending", "Queued", "Undefined")


def _rerun_by_resubmitting(request: web.Request) -> Any:
    """Rerun for an orchestrator without its own: submit the stored spec of that version
    again with Force, which makes a new version of the same job (Version+1)."""
    requester = requester_of(request)
    namespace = namespace_of(request)

    async def rerun(job_id: str, *, job_version: int = 0, reason: str = "") -> _RerunResult:
        job = requester.get_job(job_id, namespace, job_version)
        latest = requester.get_job(job_id, namespace)
        if latest.state.state_type in _NOT_RERUNNABLE:
            raise ValidationError(
                f"job {job_id} cannot be rerun while it is {latest.state.state_type}",
                hint="wait until it runs or ends, or stop it first")
        spec = Job.from_dict({k: v for k, v in job.to_dict().items()
                              if k not in ("ID", "State", "Version", "Revision",
                                           "CreateTime", "ModifyTime")})
        spec.meta = {k: v for k, v in spec.meta.items()
                     if not k.startswith(RESERVED_META_PREFIX)}
        submitted = await requester.submit_job(spec, force=True)
        version = requester.get_job(submitted.job_id, namespace).version
        return _RerunResult(submitted.evaluation_id, submitted.job_id, version,
                            list(submitted.warnings or []))

    return rerun


# ---------------------------------------------------------------------------------- sub-resources


def _history_token(job: Job, limit: int, returned: int, next_offset: int) -> str:
    """History keeps a NextToken while the job can still change, so that clients poll on it;
    once the job is terminal and every item was returned, the token is empty."""
    if job.is_terminal() and returned < limit:
        return ""
    return PagingToken("", False, limit, next_offset).encode()


async def job_history(request: web.Request) -> web.Response:
    """GET /jobs/{id}/history -> `{"Items": [JobHistory], "NextToken"}`; with `long_poll_ms`
    (ours, see `history_wait`) an empty page waits for the job's next event."""
    event_type = query_choice(request, "event_type", HISTORY_EVENT_TYPES, "all")
    execution_id = query_str(request, "execution_id")
    # Unix seconds, compared in nanoseconds: later than year 2262 matches nothing anyway
    since = min(query_int(request, "since"), INT64_MAX // 1_000_000_000)
    job_version = query_int(request, "job_version")
    all_versions = query_bool(request, "all_job_versions")
    token_text = query_str(request, "next_token")
    if token_text:
        token = PagingToken.decode(token_text)
        limit, offset = token.limit or DEFAULT_HISTORY_LIMIT, token.offset
    else:
        limit, offset = query_int(request, "limit") or DEFAULT_HISTORY_LIMIT, 0
    long_poll_ms = query_int(request, history_wait.PARAM)
    requester = requester_of(request)

    def read_page() -> history_wait.Page[JobHistory]:
        job = _resolve(request)
        items, next_offset = requester.job_history(
            job.id, since=since, event_type=event_type, execution_id=execution_id,
            job_version=job_version, all_versions=all_versions, offset=offset, limit=limit,
        )
        return job, items, next_offset

    job, items, next_offset = read_page()
    hold = history_wait.hold_seconds(long_poll_ms, request.app.get(HANDLER_TIMEOUT, 30.0))
    if hold > 0:
        job, items, next_offset = await history_wait.wait_for_history(
            read_page, (job, items, next_offset), hold,
            signal=history_wait.CommitSignal.of(requester.store.db),
            gone=lambda: request.transport is None or request.transport.is_closing())
    answer: dict[str, Any] = {
        "Items": [h.to_dict() for h in items],
        "NextToken": _history_token(job, limit, len(items), next_offset),
    }
    if hold > 0:  # the client may ask again at once: this answer came with news or late
        answer[history_wait.ANSWER_KEY] = True
    return json_response(answer)


async def job_executions(request: web.Request) -> web.Response:
    """GET /jobs/{id}/executions -> `{"Items": [Execution], "NextToken"}` (latest version
    unless `job_version` or `all_job_versions`)."""
    job_version = query_int(request, "job_version")
    all_versions = query_bool(request, "all_job_versions")
    token_text = query_str(request, "next_token")
    if token_text:
        token = PagingToken.decode(token_text)
        order_by, reverse, limit, offset = token.sort_by, token.reverse, token.limit, token.offset
        if order_by not in EXECUTION_ORDER:
            raise BindError(f"next_token: invalid paging token {token_text!r}")
    else:
        order_by = query_choice(request, "order_by", EXECUTION_ORDER, "created_at")
        reverse = query_bool(request, "reverse")
        limit = query_int(request, "limit")
        offset = 0
    job = _resolve(request)
    executions = requester_of(request).job_executions(
        job.id, job_version=job_version, all_versions=all_versions,
        order_by=order_by, reverse=reverse,
    )
    page = executions[offset:offset + limit] if limit else executions[offset:]
    more = bool(limit) and offset + len(page) < len(executions)
    return json_response({
        "Items": [e.to_dict() for e in page],
        "NextToken": next_page_token(
            sort_by=order_by, reverse=reverse, limit=limit, offset=offset,
            returned=len(page), more=more,
        ),
    })


async def job_versions(request: web.Request) -> web.Response:
    """GET /jobs/{id}/versions -> `{"Items": [Job], "NextToken": ""}`."""
    job = _resolve(request)
    versions = requester_of(request).job_versions(job.id)
    return json_response({"Items": [v.to_dict() for v in versions], "NextToken": ""})


async def job_results(request: web.Request) -> web.Response:
    """GET /jobs/{id}/results -> `{"Items": [SpecConfig], "NextToken": ""}`."""
    job = _resolve(request)
    if job.type not in ("batch", "ops"):
        # Bacalhau answers 500 here; it is the caller's mistake, so a 400 (no 5xx by design)
        raise ValidationError(
            f"job {job.id} is a {job.type} job: results exist for batch and ops jobs only",
            hint="read a long-running job's output with `bacalhau job logs`")
    results = requester_of(request).job_results(job.id)
    # gzip s3 results as presigned GET URLs when this node has AWS credentials (§4.3)
    results = await presign_results_async(results, request.app[CONFIG])
    return json_response({"Items": [r.to_dict() for r in results], "NextToken": ""})
