"""S3 jobs end to end: real `bacalhau serve` / `bacalhau devstack` processes reading inputs from
and publishing results to a real S3 protocol server (moto_server on 127.0.0.1), downloaded with
`bacalhau job get` (presigned URL or boto3) and verified by CID.

Jobs run the `copy.wasm` asset (`copy SRC DEST ...`: prints `copied SRC` or `missing SRC` per
pair), so the executions' stdout says which input files each one saw.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.conftest import ServeProcess, free_port, http_json, wait_until
from tests.integration.test_serve_cli import submit, wait_terminal
from tests.jobspecs import data_url, wasm_module
from tests.s3server import FAKE_AWS_ENV

pytestmark = [pytest.mark.integration]

COMPLETED = 9


def copy_job(pairs: list[tuple[str, str]], inputs: list[dict[str, Any]],
             publisher: dict[str, Any], *, result_paths: list[dict[str, str]] | None = None,
             count: int = 1) -> dict[str, Any]:
    """A batch job running copy.wasm over `pairs`, with `inputs` besides the module."""
    return {"Type": "batch", "Count": count, "Tasks": [{
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {
            "EntryModule": "/wasm/copy.wasm",
            "Parameters": [p for pair in pairs for p in pair]}},
        "InputSources": [
            {"Source": {"Type": "inline", "Params": {
                "URL": data_url(wasm_module("copy.wasm"), "application/wasm")}},
             "Alias": "module", "Target": "/wasm/copy.wasm"},
            *inputs,
        ],
        "Publisher": publisher,
        "ResultPaths": result_paths or [{"Name": "outputs", "Path": "/outputs"}],
    }]}


def s3_source(endpoint: str, bucket: str, key: str, target: str,
              **params: Any) -> dict[str, Any]:
    return {"Source": {"Type": "s3", "Params": {"Bucket": bucket, "Key": key,
                                                "Endpoint": endpoint, "Region": "us-east-1",
                                                **params}},
            "Alias": f"s3://{bucket}/{key}", "Target": target}


def executions(server: ServeProcess, job_id: str) -> list[dict[str, Any]]:
    status, body = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200, body
    return body["Items"]


def cid_of(server: ServeProcess, path: Path) -> str:
    got = server.cli("cid", "--hidden", str(path))
    assert got.returncode == 0, got.stderr
    return got.stdout.strip()


@pytest.fixture
def server(s3: Any, tmp_path: Path) -> Iterator[ServeProcess]:
    """A hybrid node started after the `s3` fixture put fake AWS credentials in the env,
    logging at debug level (the credentials must not show up even then)."""
    node = ServeProcess(data_dir=tmp_path / "node", extra_args=["--log-level", "debug"])
    node.start()
    try:
        yield node
    finally:
        node.stop()


def test_job_reads_a_prefix_and_publishes_to_another_bucket(s3: Any, server: ServeProcess,
                                                            tmp_path: Path) -> None:
    source, dest = s3.bucket("in"), s3.bucket("out")
    s3.put(source, "data/a.txt", "alpha\n")
    s3.put(source, "data/sub/b.txt", "beta\n")
    s3.put(source, "data/skip.csv", "not me\n")  # left out by the Filter
    s3.put(source, "elsewhere/c.txt", "not under the prefix\n")
    job = copy_job(
        [("/data/a.txt", "/outputs/a.txt"), ("/data/sub/b.txt", "/outputs/b.txt"),
         ("/data/skip.csv", "/outputs/skip.csv"), ("/data/c.txt", "/outputs/c.txt")],
        [s3_source(s3.endpoint, source, "data/", "/data", Filter=r"\.txt$")],
        {"Type": "s3", "Params": {"Bucket": dest, "Key": "runs/{jobID}/{executionID}",
                                  "Endpoint": s3.endpoint, "Encoding": "plain"}})
    job_id = submit(server, job)
    assert wait_terminal(server, job_id, 60)["StateType"] == "Completed"
    [execution] = executions(server, job_id)
    out = execution["RunOutput"]["Stdout"]
    assert "copied /data/a.txt" in out and "copied /data/sub/b.txt" in out
    assert "missing /data/skip.csv" in out and "missing /data/c.txt" in out

    published = execution["PublishedResult"]
    prefix = f"runs/{job_id}/{execution['ID']}/"
    assert published["Type"] == "s3"
    assert published["Params"]["Bucket"] == dest and published["Params"]["Key"] == prefix
    assert s3.get(dest, prefix + "outputs/a.txt") == b"alpha\n"
    assert s3.get(dest, prefix + "outputs/b.txt") == b"beta\n"
    assert prefix + "outputs/skip.csv" not in s3.keys(dest)

    # plain results are not presigned: `job get` fetches them with boto3 and verifies the CID
    status, results = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/results")
    assert status == 200 and [r["Type"] for r in results["Items"]] == ["s3"]
    got_dir = tmp_path / "got"
    got = server.cli("job", "get", job_id, "--raw", "--output-dir", str(got_dir))
    assert got.returncode == 0, got.stdout + got.stderr
    [raw] = list((got_dir / "raw").iterdir())
    assert (raw / "outputs" / "a.txt").read_text() == "alpha\n"
    assert cid_of(server, raw) == published["Params"]["CID"]


def test_wrong_checksum_fails_the_execution_with_a_clear_message(
        s3: Any, server: ServeProcess) -> None:
    source = s3.bucket("sum")
    s3.put(source, "model.bin", b"weights v2")
    wrong = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="  # sha256 of b"test"
    job = copy_job([("/model/model.bin", "/outputs/model.bin")],
                   [s3_source(s3.endpoint, source, "model.bin", "/model",
                              ChecksumSHA256=wrong)],
                   {"Type": "s3", "Params": {"Bucket": source, "Key": "never",
                                             "Endpoint": s3.endpoint}})
    job_id = submit(server, job)
    state = wait_terminal(server, job_id, 60)
    assert state["StateType"] == "Failed"
    tried = executions(server, job_id)  # the scheduler may retry: each one fails the same
    assert tried
    for execution in tried:
        message = execution["ComputeState"]["Message"]
        assert f"s3://{source}/model.bin" in message and wrong in message
        assert "the object changed or the checksum is wrong" in message
    described = server.cli("job", "describe", job_id)
    assert "the object changed or the checksum is wrong" in described.stdout
    assert not any(k.startswith("never") for k in s3.keys(source))


def test_a_checksum_s3_already_contradicts_rejects_the_bid(
        s3: Any, server: ServeProcess) -> None:
    """When S3 keeps the object's SHA-256, the bidder's size probe sees the mismatch: no node
    bids, nothing runs, and the job says why."""
    source = s3.bucket("sumbid")
    s3.put(source, "model.bin", b"weights v2", ChecksumAlgorithm="SHA256")
    wrong = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="  # sha256 of b"test"
    job = copy_job([("/model/model.bin", "/outputs/model.bin")],
                   [s3_source(s3.endpoint, source, "model.bin", "/model",
                              ChecksumSHA256=wrong)],
                   {"Type": "s3", "Params": {"Bucket": source, "Key": "never",
                                             "Endpoint": s3.endpoint}})
    job_id = submit(server, job)
    state = wait_terminal(server, job_id, 60)
    assert state["StateType"] == "Failed", state
    described = server.cli("job", "describe", job_id)
    assert "does not accept the input" in described.stdout, described.stdout
    assert "the object changed or the checksum is wrong" in described.stdout
    assert not any(e["ComputeState"]["StateType"] in (6, 7, 9)  # never Running/Publishing/Done
                   for e in executions(server, job_id))
    assert not any(k.startswith("never") for k in s3.keys(source))


class FileServer:
    """One file over HTTP on 127.0.0.1, for the urlDownload input (a thread, own loop)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.port = free_port()
        self._ready = threading.Event()
        self._stop: Any = None

    def __enter__(self) -> str:
        import asyncio

        async def handler(_request: web.Request) -> web.Response:
            return web.Response(body=self.body)

        def run() -> None:
            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_get("/words.txt", handler)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            self._stop = (loop, runner)
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}/words.txt"

    def __exit__(self, *exc: Any) -> None:
        loop, _ = self._stop
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)


def test_three_kinds_of_inputs_two_result_paths_published_to_s3_and_fetched(
        s3: Any, server: ServeProcess, tmp_path: Path) -> None:
    source, dest = s3.bucket("mix-in"), s3.bucket("mix-out")
    s3.put(source, "corpus/part-1.txt", "from s3 one\n")
    s3.put(source, "corpus/deep/part-2.txt", "from s3 two\n")
    with FileServer(b"from the web\n") as url:
        job = copy_job(
            [("/s3/part-1.txt", "/outputs/part-1.txt"),
             ("/s3/deep/part-2.txt", "/outputs/part-2.txt"),
             ("/web/words.txt", "/extra/words.txt"),
             ("/inline/note.txt", "/extra/note.txt")],
            [s3_source(s3.endpoint, source, "corpus/", "/s3"),
             {"Source": {"Type": "urlDownload", "Params": {"URL": url}},
              "Alias": "web", "Target": "/web"},
             {"Source": {"Type": "inline", "Params": {
                 "URL": data_url(b"inline text\n", "text/plain")}},
              "Alias": "note", "Target": "/inline/note.txt"}],
            {"Type": "s3", "Params": {"Bucket": dest, "Key": "r/{jobID}-{date}",
                                      "Endpoint": s3.endpoint}},
            result_paths=[{"Name": "outputs", "Path": "/outputs"},
                          {"Name": "extra", "Path": "/extra"}])
        spec = tmp_path / "job.yaml"
        spec.write_text(yaml.safe_dump(job))
        run = server.cli("job", "run", str(spec), "--wait", "--id-only", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.strip().splitlines()[-1]
    [execution] = executions(server, job_id)
    assert execution["ComputeState"]["StateType"] == COMPLETED
    assert execution["RunOutput"]["Stdout"].count("copied ") == 4
    published = execution["PublishedResult"]["Params"]
    assert published["Key"].startswith(f"r/{job_id}-2") and published["Key"].endswith(".tar.gz")
    assert s3.keys(dest) == [published["Key"]]

    # the requester has credentials: the result comes as a presigned URL of that object
    status, results = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/results")
    assert status == 200, results
    [result] = results["Items"]
    assert result["Type"] == "s3PreSigned"
    assert result["Params"]["SourceSpec"]["CID"] == published["CID"]
    assert f"/{dest}/{published['Key']}?" in result["Params"]["PreSignedURL"]

    got_dir = tmp_path / "got"
    got = server.cli("job", "get", job_id, "--output-dir", str(got_dir))
    assert got.returncode == 0, got.stdout + got.stderr
    assert (got_dir / "outputs" / "part-1.txt").read_text() == "from s3 one\n"
    assert (got_dir / "outputs" / "part-2.txt").read_text() == "from s3 two\n"
    assert (got_dir / "extra" / "words.txt").read_text() == "from the web\n"
    assert (got_dir / "extra" / "note.txt").read_text() == "inline text\n"
    # --raw keeps the result exactly as published: its CID is the one the node computed
    raw_dir = tmp_path / "raw"
    got = server.cli("job", "get", job_id, "--raw", "--output-dir", str(raw_dir))
    assert got.returncode == 0, got.stdout + got.stderr
    [raw] = list((raw_dir / "raw").iterdir())
    assert cid_of(server, raw) == published["CID"]

    # the node's credentials appear neither in its (debug) log nor in `agent config`
    config = server.cli("agent", "config", "--output", "json")
    assert config.returncode == 0, config.stderr
    for secret in (FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"], FAKE_AWS_ENV["AWS_SESSION_TOKEN"]):
        assert secret not in server.logs() and secret not in config.stdout


@pytest.fixture
def devstack(s3: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """`bacalhau devstack` (a requester and three compute nodes) with the fake credentials."""
    port = free_port()
    env = dict(os.environ, BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=str(port))
    log_path = tmp_path / "devstack.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "bacalhau", "devstack", "--computes", "3",
         "--stack-repo", str(tmp_path / "stack")],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"

    def computes_connected() -> bool:
        assert proc.poll() is None, log_path.read_text()
        status, body = http_json("GET", url + "/api/v1/orchestrator/nodes", timeout=2)
        return status == 200 and sum(
            1 for n in body["Nodes"] if n["Info"]["NodeType"] == "Compute"
            and n["ConnectionState"]["Status"] == "CONNECTED"
            and "s3" in n["Info"]["ComputeNodeInfo"]["StorageSources"]) == 3

    wait_until(computes_connected, 60, what="three connected compute nodes with s3")
    try:
        yield url, log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_partitioned_inputs_land_on_the_right_executions(s3: Any, devstack: Any) -> None:
    from bacalhau.storage.s3 import fnv1a32

    url, log_path = devstack
    source, dest = s3.bucket("parts"), s3.bucket("parts-out")
    names = [f"day-{d}/shard-{n}.txt" for d in range(3) for n in range(3)]
    for name in names:
        s3.put(source, f"in/{name}", name)
    job = copy_job(
        [(f"/in/{n}", f"/outputs/{n.replace('/', '_')}") for n in names],
        [s3_source(s3.endpoint, source, "in/", "/in", Partition={"Type": "object"})],
        {"Type": "s3", "Params": {"Bucket": dest, "Key": "p/{executionID}",
                                  "Endpoint": s3.endpoint}},
        count=3)
    status, body = http_json("PUT", url + "/api/v1/orchestrator/jobs", {"Job": job})
    assert status == 200, body
    job_id = body["JobID"]

    def done() -> list[dict[str, Any]] | None:
        _, got = http_json("GET", f"{url}/api/v1/orchestrator/jobs/{job_id}", timeout=5)
        state = got["Job"]["State"]["StateType"]
        assert state not in ("Failed", "Stopped"), (json.dumps(got)[-2000:]
                                                     + log_path.read_text()[-3000:])
        if state != "Completed":
            return None
        _, execs = http_json("GET", f"{url}/api/v1/orchestrator/jobs/{job_id}/executions")
        return [e for e in execs["Items"] if e["ComputeState"]["StateType"] == COMPLETED]

    completed = wait_until(done, 90, what=f"job {job_id} to complete")
    assert sorted(e.get("PartitionIndex", 0) for e in completed) == [0, 1, 2]
    seen: set[str] = set()
    for execution in completed:
        index = execution.get("PartitionIndex", 0)
        copied = {line.removeprefix("copied /in/")
                  for line in execution["RunOutput"]["Stdout"].splitlines()
                  if line.startswith("copied ")}
        assert copied == {n for n in names if fnv1a32(n.encode()) % 3 == index}, index
        seen |= copied
    assert seen == set(names)  # every object on exactly one execution
    assert len(s3.keys(dest, "p/")) == 3
