"""Bacalhau's PUBLIC Python clients, unchanged, against our server over real HTTP.

bacalhau-sdk==1.4.2 and bacalhau-apiclient==1.4.1 are installed in a SEPARATE virtualenv by
scripts/public_clients_venv.sh (their pins clash with the project's tools; the SDK needs
Python <3.12), so the clients run in a subprocess: an embedded driver script (DRIVER below)
submits a WASM job through the SDK, polls it to Completed, reads executions, history, results
and the job list, stops a queued job, and calls the low-level apiclient's agent and node APIs.
It writes a JSON report that this test checks.

What the clients send and which response shapes they need is documented in docs/public-clients.md.
Server fixture contract (tests/conftest.py): ``bacalhau_server`` yields an object with ``.host``,
``.port`` and ``.data_dir`` for a running ``bacalhau serve --orchestrator --compute`` process.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import wasmtime

pytestmark = [pytest.mark.integration]

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_SCRIPT = REPO_ROOT / "scripts" / "public_clients_venv.sh"

# How long the driver may wait for the hello job to reach a terminal state.
JOB_TIMEOUT_S = float(os.environ.get("BACALHAU_PUBLIC_CLIENTS_JOB_TIMEOUT", "120"))

# WASI command module: writes "hello\n" to fd 1 with fd_write, returns from _start (exit 0).
HELLO_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))   ;; iov.buf
    (i32.store (i32.const 4) (i32.const 6))    ;; iov.len
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""

# Runs inside the public-clients venv (Python 3.11: stdlib + bacalhau_sdk + bacalhau_apiclient).
# argv: CONFIG_JSON REPORT_JSON. Host/port come from BACALHAU_API_HOST / BACALHAU_API_PORT, the
# way the SDK itself reads them. A failed expectation raises; the report then has ok=false and
# the traceback.
DRIVER = r'''
import io
import json
import os
import sys
import tarfile
import time
import traceback
import urllib.request
from importlib.metadata import version

CFG = json.load(open(sys.argv[1]))
REPORT = {"ok": False, "steps": {}}
TERMINAL_JOB_STATES = ("Completed", "Failed", "Stopped")
SWALLOWED = "the SDK swallowed an ApiException, see stdout"


def expect(cond, what, *context):
    if not cond:
        raise AssertionError(what + "".join("\n  context: %r" % (c,) for c in context))


def record(name, value):
    REPORT["steps"][name] = value.to_dict() if hasattr(value, "to_dict") else value


class _Raw:
    """Minimal stand-in for the apiclient's RESTResponse so ApiClient.deserialize can be reused."""

    def __init__(self, obj):
        self.data = json.dumps(obj)


def poll_job(jobs, job_id, until, timeout, what):
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        got = jobs.get(job_id)
        expect(got is not None, "Jobs.get returned None (" + SWALLOWED + ")")
        state = got.job.state.state_type if got.job.state is not None else None
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in until:
            return got, seen
        expect(time.monotonic() < deadline,
               "timed out waiting for %s; states seen %r" % (what, seen))
        time.sleep(0.25)  # poll interval of a deadline-bounded wait


def wasm_task_params():
    from bacalhau_apiclient.models.input_source import InputSource
    from bacalhau_apiclient.models.spec_config import SpecConfig

    # EntryModule given as an InputSource object (v1.4 wasm spec shape, what SDK users write);
    # a model nested in a params dict is serialized by the apiclient with its JSON keys.
    return {
        "EntryModule": InputSource(
            source=SpecConfig(type="inline", params={"URL": CFG["wasm_data_url"]}),
            target="/wasm/main.wasm",
        ),
        "Entrypoint": "_start",
        "Parameters": [],
    }


def run():
    from bacalhau_apiclient.api.ops_api import OpsApi
    from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi
    from bacalhau_apiclient.api_client import ApiClient
    from bacalhau_apiclient.configuration import Configuration
    from bacalhau_apiclient.models.api_put_job_request import ApiPutJobRequest as PutJobRequest
    from bacalhau_apiclient.models.job import Job
    from bacalhau_apiclient.models.result_path import ResultPath
    from bacalhau_apiclient.models.spec_config import SpecConfig
    from bacalhau_apiclient.models.task import Task
    from bacalhau_apiclient.models.timeout_config import TimeoutConfig
    from bacalhau_sdk.config import init_config
    from bacalhau_sdk.jobs import Jobs

    REPORT["versions"] = {p: version(p) for p in ("bacalhau-sdk", "bacalhau-apiclient", "urllib3")}
    host, port = os.environ["BACALHAU_API_HOST"], os.environ["BACALHAU_API_PORT"]
    base = "http://%s:%s" % (host, port)
    expect(init_config().host == base, "SDK did not pick host/port from BACALHAU_API_HOST/PORT")

    # ---- low-level apiclient: agent endpoints ----
    conf = Configuration()
    conf.host = base
    client = ApiClient(conf)
    ops = OpsApi(client)
    alive = ops.agentalive()  # response_type 'str': the JSON object comes back str()-ed
    record("agent_alive", alive)
    expect(isinstance(alive, str) and "OK" in alive, "agent alive", alive)
    ver = ops.agentversion()
    record("agent_version", ver)
    expect(ver is not None and ver.git_version and ver.major is not None,
           "agent version fields", ver)
    agent_node = ops.agentnode()
    record("agent_node", agent_node)
    expect(agent_node is not None and agent_node.node_id, "agent node NodeID", agent_node)

    # ---- low-level apiclient: nodes ----
    orch = OrchestratorApi(client)
    listed = orch.orchestratorlist_nodes()
    raw = json.loads(client.last_response.data)
    nodes = listed.nodes
    if nodes is None:
        # The swagger model reads key "nodes" but Go (and the reference) send "Nodes": still
        # prove the Go-cased items deserialize through the client's own models (int/float/dict
        # types where declared).
        expect(isinstance(raw.get("Nodes"), list), "list nodes: no 'nodes'/'Nodes' list", raw)
        nodes = client.deserialize(_Raw({"nodes": raw["Nodes"]}), "ApiListNodesResponse").nodes
        REPORT["nodes_key"] = "Nodes"
    else:
        REPORT["nodes_key"] = "nodes"
    record("list_nodes", [n.to_dict() for n in nodes])
    expect(len(nodes) >= 1, "at least one node listed", raw)
    wasm_nodes = [
        n for n in nodes
        if n.info and n.info.compute_node_info
        and "wasm" in (n.info.compute_node_info.execution_engines or [])
    ]
    expect(wasm_nodes, "a node lists 'wasm' in ComputeNodeInfo.ExecutionEngines", raw)
    expect(agent_node.node_id in {n.info.node_id for n in nodes},
           "agent NodeID appears in the node list")
    node_id = wasm_nodes[0].info.node_id
    got_node = orch.orchestratorget_node(node_id)
    raw = json.loads(client.last_response.data)
    node = got_node.node
    if node is None:
        expect(isinstance(raw.get("Node"), dict), "get node: neither 'node' nor 'Node' object", raw)
        node = client.deserialize(_Raw({"node": raw["Node"]}), "ApiGetNodeResponse").node
    record("get_node", node)
    expect(node.info.node_id == node_id, "get node returns the requested node", raw)

    # ---- SDK: submit the hello WASM job ----
    jobs = Jobs()
    task = Task(
        name="main",
        engine=SpecConfig(type="wasm", params=wasm_task_params()),
        publisher=SpecConfig(type="local"),
        result_paths=[ResultPath(name="outputs", path="/outputs")],
        timeouts=TimeoutConfig(execution_timeout=60),
    )
    job = Job(name=CFG["job_name"], type="batch", count=1, tasks=[task],
              labels={"suite": "public-clients"})
    put = jobs.put(PutJobRequest(job=job))
    record("put", put)
    expect(put is not None, "Jobs.put returned None (" + SWALLOWED + ")")
    expect(isinstance(put.job_id, str) and put.job_id.startswith("j-"),
           "put JobID is j-<uuid>", put)
    expect(isinstance(put.evaluation_id, str), "put EvaluationID is a string", put)
    job_id = put.job_id

    got, seen = poll_job(jobs, job_id, TERMINAL_JOB_STATES, CFG["timeout"], "the hello job")
    REPORT["job_states_seen"] = seen
    record("get", got)
    expect(got.job.state.state_type == "Completed",
           "hello job Completed (job state is a string)", seen, got.job.state.message)
    j = got.job
    expect(j.id == job_id and j.name == CFG["job_name"] and j.type == "batch", "job identity", j)
    expect(isinstance(j.create_time, int) and isinstance(j.modify_time, int),
           "Create/ModifyTime are ints")
    expect(j.tasks and j.tasks[0].engine.type == "wasm", "task engine round-trips", j.tasks)
    expect((j.labels or {}).get("suite") == "public-clients", "labels round-trip", j.labels)

    # ---- SDK: executions ----
    ex = jobs.executions(job_id)
    record("executions", ex)
    expect(ex is not None and ex.items, "Jobs.executions returned items", ex)
    hello = [e for e in ex.items
             if e.run_output is not None and "hello" in (e.run_output.stdout or "")]
    expect(hello, "an execution whose RunOutput.Stdout contains 'hello'", ex)
    e = hello[0]
    expect(e.job_id == job_id and e.node_id and e.id.startswith("e-"), "execution identity", e)
    expect(e.compute_state.state_type == 9, "execution ComputeState.StateType is int 9 (Completed)",
           e.compute_state)
    expect(e.run_output.exit_code == 0, "execution exit code 0", e.run_output)
    expect(isinstance(e.create_time, int), "execution CreateTime is an int")

    # ---- SDK: history (SDK default event_type='execution', plus 'job' and 'all') ----
    for event_type in ("execution", "job", "all"):
        h = jobs.history(job_id, event_type=event_type)
        record("history_" + event_type, h)
        expect(h is not None and h.items, "Jobs.history(event_type=%r) items" % event_type, h)
        for item in h.items:
            expect(item.event is not None and isinstance(item.event.message, str),
                   "history item Event", item)
        if event_type == "execution":
            expect(all(item.execution_id for item in h.items),
                   "execution-level items carry ExecutionID", h)

    # ---- SDK: get with include ----
    gi = jobs.get(job_id, include="executions")
    expect(gi is not None and gi.executions is not None and gi.executions.items,
           "get include=executions", gi)
    gi = jobs.get(job_id, include="history")
    expect(gi is not None and gi.history is not None and gi.history.items,
           "get include=history", gi)

    # ---- SDK: results + download of the local publisher's tarball ----
    res = jobs.results(job_id)
    record("results", res)
    expect(res is not None and res.items, "Jobs.results returned items", res)
    url_items = [r for r in res.items if r.type == "urlDownload" and (r.params or {}).get("URL")]
    expect(url_items, "local publisher result is {Type: urlDownload, Params: {URL}}", res)
    url = url_items[0].params["URL"]
    # loopback URL: never through a proxy from the environment
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as resp:
        blob = resp.read()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tf:
        members = {m.name.lstrip("./"): m for m in tf.getmembers() if m.isfile()}
        REPORT["result_members"] = sorted(members)
        expect("stdout" in members, "results tarball has a top-level 'stdout'", sorted(members))
        stdout = tf.extractfile(members["stdout"]).read().decode()
    expect(stdout == "hello\n", "downloaded stdout is exactly 'hello\\n'", stdout)

    # ---- SDK: list, paging with next_token until our job shows up ----
    token, found, pages = "", False, 0
    while pages < 200:
        lst = jobs.list(limit=5, next_token=token)
        pages += 1
        expect(lst is not None and isinstance(lst.items, list), "Jobs.list page", lst)
        found = found or any(x.id == job_id for x in lst.items)
        token = lst.next_token or ""
        if found or not token:
            break
    REPORT["list_pages"] = pages
    expect(found, "the hello job appears in Jobs.list pages")

    # ---- SDK: stop a job that can only queue (job as a plain dict, PutJobRequest takes that) ----
    params = wasm_task_params()
    stop_job = {
        "Name": CFG["job_name"] + "-queued",
        "Type": "batch",
        "Count": 1,
        "Constraints": [
            {"Key": "public-clients-test", "Operator": "=", "Values": ["never-matches"]},
        ],
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": params},
            "Timeouts": {"QueueTimeout": 600},
        }],
    }
    put2 = jobs.put(PutJobRequest(job=stop_job))
    record("put_queued", put2)
    expect(put2 is not None and put2.job_id, "Jobs.put (dict job) returned a JobID", put2)
    got2, seen2 = poll_job(jobs, put2.job_id, ("Queued",) + TERMINAL_JOB_STATES, 60,
                           "the queued job")
    REPORT["queued_job_states_seen"] = seen2
    expect(got2.job.state.state_type == "Queued",
           "job with an unsatisfiable constraint and QueueTimeout is Queued", seen2)
    stopped = jobs.stop(put2.job_id, reason="stopped by the public-clients test")
    record("stop", stopped)
    expect(stopped is not None and isinstance(stopped.evaluation_id, str),
           "Jobs.stop response", stopped)
    got3, seen3 = poll_job(jobs, put2.job_id, TERMINAL_JOB_STATES, 30, "the stopped job")
    expect(got3.job.state.state_type == "Stopped", "stopped job ends Stopped", seen3)
    # reason=None -> query "reason=None"; stopping a Stopped job is a no-op
    again = jobs.stop(put2.job_id)
    record("stop_again", again)
    expect(again is not None, "Jobs.stop on an already Stopped job succeeds (no-op)")


try:
    run()
    REPORT["ok"] = True
except BaseException:
    REPORT["error"] = traceback.format_exc()
finally:
    with open(sys.argv[2], "w") as fh:
        json.dump(REPORT, fh, indent=1, default=str)
'''


@pytest.fixture(scope="session")
def public_clients_python() -> str:
    """Python of the separate public-clients venv; skips, naming why, if it cannot be built."""
    try:
        proc = subprocess.run(
            ["bash", str(VENV_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"public-clients venv could not be created: {exc!r}")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        pytest.skip(f"public-clients venv could not be created (rc={proc.returncode}): {tail}")
    return lines[-1]


def hello_wasm_data_url() -> str:
    wasm = wasmtime.wat2wasm(HELLO_WAT)
    assert wasm[:4] == b"\0asm"
    return "data:application/wasm;base64," + base64.b64encode(wasm).decode()


def _client_host(host: str) -> str:
    # The SDK formats "http://{host}:{port}" without brackets, so it cannot reach an IPv6 literal;
    # a wildcard bind address is reached through loopback.
    loopback = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "::1": "127.0.0.1"}
    return loopback.get(host, host)


def test_public_python_clients_against_server(bacalhau_server, public_clients_python, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "wasm_data_url": hello_wasm_data_url(),
                "job_name": f"public-clients-{uuid.uuid4().hex[:8]}",
                "timeout": JOB_TIMEOUT_S,
            }
        )
    )
    report_path = tmp_path / "report.json"

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BACALHAU_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env.update(
        HOME=str(home),  # the SDK creates ~/.bacalhau; keep it out of the real home
        BACALHAU_API_HOST=_client_host(str(bacalhau_server.host)),
        BACALHAU_API_PORT=str(bacalhau_server.port),
        PYTHONDONTWRITEBYTECODE="1",
    )
    proc = subprocess.run(
        [public_clients_python, str(driver), str(config), str(report_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=JOB_TIMEOUT_S + 240,
        check=False,
    )
    diag = (
        f"driver rc={proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
        f"--- stderr ---\n{proc.stderr[-4000:]}"
    )
    assert report_path.is_file(), f"driver wrote no report\n{diag}"
    report = json.loads(report_path.read_text())
    steps = json.dumps(report.get("steps", {}), indent=1, default=str)[-6000:]
    assert report["ok"], f"{report.get('error')}\n--- steps ---\n{steps}\n{diag}"
    assert proc.returncode == 0, diag
    # The SDK swallows ApiException and prints it: such a line means a call got a non-2xx.
    assert "Exception while calling" not in proc.stdout, diag
    # bacalhau-sdk 1.4.2 only creates an empty ~/.bacalhau (mode 0700): no key files, no auth.
    sdk_dir = home / ".bacalhau"
    assert sdk_dir.is_dir(), "SDK did not create ~/.bacalhau"
    leftovers = list(sdk_dir.iterdir())
    assert leftovers == [], f"SDK wrote files into ~/.bacalhau: {leftovers}"
    assert report["versions"]["bacalhau-sdk"] == "1.4.2"
    assert report["versions"]["bacalhau-apiclient"] == "1.4.1"
