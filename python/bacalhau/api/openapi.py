"""The OpenAPI 3 document of the REST API, built as data and served at `/api/v1/openapi.json`.

It describes every `/api/` route the server registers, with Bacalhau's exact wire names
(reference §2-§3): the request and response bodies, the query parameters, the APIError body of
every failure, and links (submit -> describe / stop) for stateful fuzzing.
`tests/unit/test_api_openapi.py` compares it with the router both ways, and
`tests/integration/test_api_fuzz.py` fuzzes a running node against it with schemathesis.
Paths outside `/api/` (the legacy redirects `/`, `/version`, `/livez`, the web UI's static
files) are not API and are left out on purpose.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bacalhau.version import build_version_info

OPENAPI_PATH = "/api/v1/openapi.json"
JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
AGENT = "/api/v1/agent"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = list(required)
    return out


def _arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
NUM: Schema = {"type": "number"}
STR_MAP: Schema = {"type": "object", "additionalProperties": STR}
ANY_MAP: Schema = {"type": "object", "additionalProperties": True}
NS: Schema = {"type": "integer", "format": "int64", "description": "Unix nanoseconds"}


EXAMPLE_JOB: Schema = {
    "Name": "openapi-example", "Type": "batch", "Count": 1,
    "Tasks": [{"Name": "main", "Engine": {"Type": "noop"},
               "Timeouts": {"QueueTimeout": 600}}],
}


def _schemas() -> dict[str, Schema]:
    resources = _obj({"CPU": NUM, "Memory": INT, "Disk": INT, "GPU": INT,
                      "GPUs": _arr(_obj({"Index": INT, "Name": STR, "Vendor": STR,
                                         "Memory": INT, "PCIAddress": STR}))})
    return {
        "APIError": _obj(
            {"Status": INT, "Message": STR, "RequestID": STR, "Code": STR, "Component": STR,
             "Hint": STR, "Details": STR_MAP},
            ("Status", "Message", "RequestID", "Code", "Component"),
            description="Every error answer (reference §3.4).",
        ),
        "SpecConfig": _obj({"Type": STR, "Params": ANY_MAP}, ("Type",)),
        "InputSource": _obj({"Source": _ref("SpecConfig"), "Alias": STR, "Target": STR},
                            ("Source",)),
        "ResultPath": _obj({"Name": STR, "Path": STR}, ("Name", "Path")),
        "ResourcesConfig": _obj({"CPU": STR, "Memory": STR, "Disk": STR, "GPU": STR}),
        "Resources": resources,
        "PortMapping": _obj({"Name": STR, "Static": INT, "Target": INT, "HostNetwork": STR}),
        "NetworkConfig": _obj({"Type": STR, "Domains": _arr(STR),
                               "Ports": _arr(_ref("PortMapping"))}),
        "TimeoutConfig": _obj({"ExecutionTimeout": INT, "QueueTimeout": INT,
                               "TotalTimeout": INT}),
        "Task": _obj(
            {"Name": STR, "Engine": _ref("SpecConfig"), "Publisher": _ref("SpecConfig"),
             "Env": STR_MAP, "Meta": STR_MAP, "InputSources": _arr(_ref("InputSource")),
             "ResultPaths": _arr(_ref("ResultPath")), "Resources": _ref("ResourcesConfig"),
             "Network": _ref("NetworkConfig"), "Timeouts": _ref("TimeoutConfig")},
            ("Name", "Engine"),
        ),
        "LabelSelectorRequirement": _obj({"Key": STR, "Operator": STR, "Values": _arr(STR)},
                                         ("Key", "Operator")),
        "JobState": _obj({"StateType": {"type": "string", "enum": [
            "Undefined", "Pending", "Queued", "Running", "Completed", "Failed", "Stopped"]},
            "Message": STR, "Details": STR_MAP}, ("StateType",)),
        "Job": _obj(
            {"ID": STR, "Name": STR, "Namespace": STR,
             "Type": {"type": "string", "enum": ["batch", "ops", "daemon", "service"]},
             "Priority": INT, "Count": INT,
             "Constraints": _arr(_ref("LabelSelectorRequirement")), "Meta": STR_MAP,
             "Labels": STR_MAP, "Tasks": _arr(_ref("Task")), "State": _ref("JobState"),
             "Version": INT, "Revision": INT, "CreateTime": NS, "ModifyTime": NS},
            ("ID", "Name", "Namespace", "Type", "Priority", "Count", "Tasks", "State",
             "Version", "Revision", "CreateTime", "ModifyTime"),
            description="A job as the server returns it (reference §2.1).",
        ),
        "JobSpec": _obj(
            {"ID": STR, "Name": STR, "Namespace": STR,
             "Type": {"type": "string", "enum": ["batch", "ops", "daemon", "service"]},
             "Priority": INT, "Count": {"type": "integer", "minimum": 0},
             "Constraints": _arr(_ref("LabelSelectorRequirement")), "Meta": STR_MAP,
             "Labels": STR_MAP, "Tasks": {**_arr(_ref("Task")), "minItems": 1}},
            ("Type", "Tasks"),
            description="A job as a client submits it; server-managed fields are ignored.",
        ),
        "ExecutionState": _obj({"StateType": INT, "Message": STR, "Details": STR_MAP},
                               ("StateType",)),
        "RunCommandResult": _obj(
            {"Stdout": STR, "StdoutTruncated": BOOL, "stderr": STR, "StderrTruncated": BOOL,
             "ExitCode": INT, "ErrorMsg": STR}, nullable=True,
            description="Note the lower-case `stderr` key (Bacalhau's Go tag).",
        ),
        "Execution": _obj(
            {"ID": STR, "Namespace": STR, "EvalID": STR, "Name": STR, "NodeID": STR,
             "JobID": STR, "Job": _ref("Job"), "JobVersion": INT,
             "AllocatedResources": _obj({"Tasks": {"type": "object",
                                                   "additionalProperties": resources}}),
             "DesiredState": _ref("ExecutionState"), "ComputeState": _ref("ExecutionState"),
             "PublishedResult": _ref("SpecConfig"), "RunOutput": _ref("RunCommandResult"),
             "PreviousExecution": STR, "NextExecution": STR, "FollowupEvalID": STR,
             "PartitionIndex": INT, "Revision": INT, "CreateTime": NS, "ModifyTime": NS},
            ("ID", "JobID", "NodeID", "DesiredState", "ComputeState", "CreateTime",
             "ModifyTime"),
        ),
        "Evaluation": _obj(
            {"ID": STR, "Namespace": STR, "JobID": STR, "TriggeredBy": STR, "Priority": INT,
             "Type": STR, "Status": STR, "Comment": STR, "WaitUntil": INT, "CreateTime": NS,
             "ModifyTime": NS},
            description="Not returned by any endpoint; its ID is (EvaluationID).",
        ),
        "Event": _obj({"Message": STR, "Topic": STR, "Timestamp": STR, "Details": STR_MAP},
                      ("Message",)),
        "JobHistory": _obj(
            {"SeqNum": INT, "Type": {"type": "string", "enum": ["JobLevel", "ExecutionLevel"]},
             "JobID": STR, "JobVersion": INT, "ExecutionID": STR, "Event": _ref("Event"),
             "Time": STR},
            ("SeqNum", "Type", "JobID", "Event"),
        ),
        "BuildVersionInfo": _obj(
            {k: STR for k in ("Major", "Minor", "GitVersion", "GitCommit", "BuildDate",
                              "GOOS", "GOARCH")}, ("GitVersion",)),
        "ComputeNodeInfo": _obj(
            {"ExecutionEngines": _arr(STR), "Publishers": _arr(STR),
             "StorageSources": _arr(STR), "MaxCapacity": resources, "QueueCapacity": resources,
             "AvailableCapacity": resources, "MaxJobRequirements": resources,
             "RunningExecutions": INT, "EnqueuedExecutions": INT, "address": STR}),
        "NodeInfo": _obj(
            {"NodeID": STR, "NodeType": {"type": "string", "enum": ["Compute", "Requester"]},
             "Labels": STR_MAP, "SupportedProtocols": _arr(STR),
             "ComputeNodeInfo": _ref("ComputeNodeInfo"),
             "BacalhauVersion": _ref("BuildVersionInfo")},
            ("NodeID", "NodeType"),
        ),
        "ConnectionState": _obj(
            {"Status": {"type": "string", "enum": ["CONNECTED", "DISCONNECTED"]},
             "LastHeartbeat": STR, "LastComputeSeqNum": INT, "LastOrchestratorSeqNum": INT,
             "ConnectedSince": STR, "DisconnectedSince": STR, "LastError": STR},
            ("Status",)),
        "NodeState": _obj(
            {"Info": _ref("NodeInfo"),
             "Membership": {"type": "string", "enum": ["PENDING", "APPROVED", "REJECTED"]},
             "Connection": {"type": "string", "enum": ["CONNECTED", "DISCONNECTED"],
                            "deprecated": True},
             "ConnectionState": _ref("ConnectionState")},
            ("Info", "Membership", "ConnectionState"),
        ),
        "PagedJobs": _page("Job"),
        "PagedExecutions": _page("Execution"),
        "PagedHistory": _page("JobHistory"),
        "PagedResults": _page("SpecConfig"),
        "PutJobRequest": _obj({"Job": _ref("JobSpec"), "Force": BOOL}, ("Job",),
                              example={"Job": EXAMPLE_JOB, "Force": False}),
        "PutJobResponse": _obj({"JobID": STR, "EvaluationID": STR, "Warnings": _arr(STR)},
                               ("JobID", "EvaluationID", "Warnings")),
        "DiffJobRequest": _obj({"Job": _ref("JobSpec")}, ("Job",)),
        "DiffJobResponse": _obj({"Diff": STR, "Warnings": _arr(STR)}, ("Diff", "Warnings")),
        "GetJobResponse": _obj({"Job": _ref("Job"), "History": _ref("PagedHistory"),
                                "Executions": _ref("PagedExecutions")}, ("Job",)),
        "StopJobRequest": _obj({"reason": STR}),
        "StopJobResponse": _obj({"EvaluationID": STR}, ("EvaluationID",)),
        "RerunJobRequest": _obj({"JobVersion": INT, "Reason": STR}),
        "RerunJobResponse": _obj({"EvaluationID": STR, "JobID": STR, "JobVersion": INT,
                                  "Warnings": _arr(STR)}, ("EvaluationID", "JobID")),
        "LogFrame": _obj({"value": _obj({"Type": {"type": "integer", "enum": [1, 2]},
                                         "Line": STR}), "error": STR},
                         description="One WebSocket text frame of /jobs/{id}/logs."),
        "ListNodesResponse": _obj({"Nodes": _arr(_ref("NodeState")), "NextToken": STR},
                                  ("Nodes", "NextToken")),
        "GetNodeResponse": _obj({"Node": _ref("NodeState")}, ("Node",)),
        "PutNodeRequest": _obj(
            {"Action": {"type": "string", "enum": ["approve", "reject", "delete"]},
             "Message": STR, "NodeID": STR}, ("Action",)),
        "PutNodeResponse": _obj({"Success": BOOL, "Error": STR}, ("Success",)),
        "AliveResponse": _obj({"Status": STR}, ("Status",)),
        "ConfigResponse": _obj({"config": ANY_MAP}, ("config",),
                               description="The node's config; secrets are `********`."),
        "AuthConfigResponse": _obj({"Version": STR, "Config": ANY_MAP}, ("Version",)),
        "AuthMethodsResponse": _obj({"Methods": ANY_MAP, "NextToken": STR}, ("Methods",)),
    }


def _page(item: str) -> Schema:
    return _obj({"Items": _arr(_ref(item)), "NextToken": STR}, ("Items", "NextToken"))


def _q(name: str, schema: Schema, description: str = "") -> Schema:
    out: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


LIMIT = _q("limit", {"type": "integer", "minimum": 0}, "0 = no limit")
NEXT_TOKEN = _q("next_token", STR, "NextToken of the previous page")
REVERSE = _q("reverse", BOOL)
NAMESPACE = _q("namespace", STR, "`*` or empty lists every namespace")
JOB_VERSION = _q("job_version", {"type": "integer", "minimum": 0})
ALL_VERSIONS = _q("all_job_versions", BOOL)
ORDER_AT = _q("order_by", {"type": "string", "enum": ["created_at", "modified_at"]})
LABELS = _q("labels", _arr(STR), "label selectors (k8s syntax), repeatable")
ID_PARAM: Schema = {"name": "id", "in": "path", "required": True,
                    "schema": {"type": "string", "minLength": 1},
                    "description": "job name, full id or unique id prefix"}
NODE_ID_PARAM: Schema = {"name": "id", "in": "path", "required": True,
                         "schema": {"type": "string", "minLength": 1},
                         "description": "node id or unique prefix"}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema)}}}


def _op(op_id: str, summary: str, ok: str, *, params: list[Schema] | None = None,
        body: str | None = None, body_required: bool = True, tag: str = "orchestrator",
        security: bool = True, links: dict[str, Any] | None = None) -> dict[str, Any]:
    """One operation; every failure answers the APIError body."""
    op: dict[str, Any] = {
        "operationId": op_id, "summary": summary, "tags": [tag],
        "parameters": params or [],
        "responses": {"200": _ok(ok), "default": _ok("APIError", "An APIError")},
    }
    if links:
        op["responses"]["200"]["links"] = links
    if body:
        op["requestBody"] = {"required": body_required,
                             "content": {"application/json": {"schema": _ref(body)}}}
    if not security:
        op["security"] = []
    return op


def _job_link(op_id: str) -> dict[str, Any]:
    return {"operationId": op_id, "parameters": {"id": "$response.body#/JobID"}}


def _paths() -> dict[str, Any]:
    submit_links = {"GetJob": _job_link("getJob"), "StopJob": _job_link("stopJob"),
                    "JobHistory": _job_link("jobHistory"),
                    "JobExecutions": _job_link("jobExecutions")}
    submit = _op("putJob", "Submit a job, or update the job of the same Name", "PutJobResponse",
                 body="PutJobRequest", links=submit_links)
    post_submit = {**submit, "operationId": "postJob", "summary": "Alias of PUT /jobs"}
    return {
        JOBS: {
            "put": submit,
            "post": post_submit,
            "get": _op("listJobs", "List jobs", "PagedJobs", params=[
                NAMESPACE, LIMIT, NEXT_TOKEN, ORDER_AT, REVERSE, LABELS]),
        },
        JOBS + "/diff": {
            "put": _op("diffJob", "Diff a spec against the stored job of the same Name",
                       "DiffJobResponse", body="DiffJobRequest"),
        },
        JOBS + "/{id}": {
            "get": _op("getJob", "Describe a job", "GetJobResponse", params=[
                ID_PARAM, NAMESPACE,
                _q("include", STR, "comma list of history, executions"),
                JOB_VERSION, LIMIT]),
            "delete": _op("stopJob", "Stop a job", "StopJobResponse", params=[
                ID_PARAM, NAMESPACE, _q("reason", STR)], body="StopJobRequest",
                body_required=False),
        },
        JOBS + "/{id}/rerun": {
            "put": _op("rerunJob", "Rerun a job version", "RerunJobResponse",
                       params=[ID_PARAM, NAMESPACE], body="RerunJobRequest",
                       body_required=False),
        },
        JOBS + "/{id}/history": {
            "get": _op("jobHistory", "A job's history (the token stays while it is active)",
                       "PagedHistory", params=[
                           ID_PARAM, NAMESPACE,
                           _q("event_type", {"type": "string",
                                             "enum": ["all", "job", "execution"]}),
                           _q("execution_id", STR), _q("since", {"type": "integer",
                                                                 "minimum": 0}),
                           JOB_VERSION, ALL_VERSIONS, LIMIT, NEXT_TOKEN]),
        },
        JOBS + "/{id}/executions": {
            "get": _op("jobExecutions", "A job's executions", "PagedExecutions", params=[
                ID_PARAM, NAMESPACE, JOB_VERSION, ALL_VERSIONS, ORDER_AT, REVERSE, LIMIT,
                NEXT_TOKEN]),
        },
        JOBS + "/{id}/versions": {
            "get": _op("jobVersions", "Every version of a job", "PagedJobs",
                       params=[ID_PARAM, NAMESPACE]),
        },
        JOBS + "/{id}/results": {
            "get": _op("jobResults", "Published results of the latest version",
                       "PagedResults", params=[ID_PARAM, NAMESPACE]),
        },
        JOBS + "/{id}/logs": {
            "get": {
                **_op("jobLogs", "Logs over a WebSocket (frames: LogFrame)", "LogFrame",
                      params=[ID_PARAM, NAMESPACE, _q("execution_id", STR),
                              _q("follow", BOOL), _q("tail", BOOL), JOB_VERSION,
                              ALL_VERSIONS]),
                "description": "Connect with `Upgrade: websocket`; a plain GET answers the "
                               "job lookup's APIError, or 400. With users configured, send "
                               "`Authorization`, or (browsers) the subprotocols "
                               "`bacalhau-auth` and the base64url API key; the server echoes "
                               "only `bacalhau-auth`.",
            },
        },
        NODES: {
            "get": _op("listNodes", "List nodes", "ListNodesResponse", links={
                "GetNode": {"operationId": "getNode",
                            "parameters": {"id": "$response.body#/Nodes/0/Info/NodeID"}}},
                params=[
                LIMIT, NEXT_TOKEN, REVERSE, LABELS,
                _q("order_by", {"type": "string", "enum": [
                    "id", "type", "available_cpu", "available_memory", "available_disk",
                    "available_gpu", "approval", "status"]}),
                _q("filter-approval", {"type": "string",
                                       "enum": ["PENDING", "APPROVED", "REJECTED"]}),
                _q("filter-status", {"type": "string",
                                     "enum": ["CONNECTED", "DISCONNECTED"]})]),
            "post": _op("updateNodeByBody", "Approve, reject or delete the node named by "
                        "NodeID (bacalhau-apiclient)", "PutNodeResponse",
                        body="PutNodeRequest"),
        },
        NODES + "/{id}": {
            "get": _op("getNode", "Describe a node", "GetNodeResponse",
                       params=[NODE_ID_PARAM]),
            "put": _op("updateNode", "Approve, reject or delete a node", "PutNodeResponse",
                       params=[NODE_ID_PARAM], body="PutNodeRequest"),
        },
        AGENT + "/alive": {"get": _op("agentAlive", "Liveness", "AliveResponse",
                                      tag="agent", security=False)},
        AGENT + "/version": {"get": _op("agentVersion", "Build version", "BuildVersionInfo",
                                        tag="agent", security=False)},
        AGENT + "/node": {"get": _op("agentNode", "This node's NodeInfo", "NodeInfo",
                                     tag="agent")},
        AGENT + "/config": {"get": _op("agentConfig", "This node's config, redacted",
                                       "ConfigResponse", tag="agent")},
        AGENT + "/debug": {"get": {**_op("agentDebug", "Debug info per component",
                                         "AliveResponse", tag="agent"),
                                   "responses": {
                                       "200": {"description": "component -> debug info",
                                               "content": {"application/json": {
                                                   "schema": ANY_MAP}}},
                                       "default": _ok("APIError", "An APIError")}}},
        AGENT + "/authconfig": {"get": _op("agentAuthConfig", "OAuth2 settings (none)",
                                           "AuthConfigResponse", tag="agent",
                                           security=False)},
        "/api/v1/auth": {"get": _op("listAuthMethods", "Token-issuing methods (none)",
                                    "AuthMethodsResponse", tag="auth", security=False)},
        "/api/v1/auth/{method}": {
            "parameters": [{"name": "method", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1}}],
            "get": _op("getAuthMethod", "A method's requirement (always 404: none exist)",
                       "AuthMethodsResponse", tag="auth", security=False),
            "post": _op("runAuthMethod", "Run a method (always 404: none exist)",
                        "AuthMethodsResponse", tag="auth", security=False),
        },
        OPENAPI_PATH: {"get": {
            "operationId": "openapi", "summary": "This document", "tags": ["meta"],
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document",
                                  "content": {"application/json": {"schema": ANY_MAP}}},
                          "default": _ok("APIError", "An APIError")}}},
    }


def build_document(*, orchestrator: bool = True, auth_required: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.0 document; `orchestrator=False` leaves out `/api/v1/orchestrator/*`
    (a compute-only node serves only the agent, auth and document paths); `auth_required`
    (users configured) makes Basic or Bearer credentials required outside the open paths."""
    version = build_version_info()
    paths = _paths()
    if not orchestrator:
        paths = {p: v for p, v in paths.items() if not p.startswith("/api/v1/orchestrator")}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Bacalhau API (bacalhau-py)",
            "version": str(version.get("GitVersion", "")),
            "description": "Wire-compatible with Bacalhau v1.5+ (`/api/v1/orchestrator`, "
                           "`/api/v1/agent`). Errors are APIError bodies. With users "
                           "configured (API.Auth.Users) send Basic or Bearer credentials.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": n} for n in ("orchestrator", "agent", "auth", "meta")],
        "security": [{"basic": []}, {"apiKey": []}] if auth_required else [],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "an API key from API.Auth.Users"},
            },
        },
    }


OPENAPI_DOC = web.AppKey("openapi_doc", dict)


async def serve_document(request: web.Request) -> web.Response:
    from .middleware import json_response

    return json_response(request.app[OPENAPI_DOC])


def setup(app: web.Application, *, orchestrator: bool = True, auth_required: bool = False
          ) -> None:
    app[OPENAPI_DOC] = build_document(orchestrator=orchestrator, auth_required=auth_required)
    app.router.add_get(OPENAPI_PATH, serve_document)


__all__ = ["OPENAPI_PATH", "build_document", "serve_document", "setup"]
