"""The Python SDK (`from bacalhau import Client, AsyncClient, Job`) against a real
`bacalhau serve`: the README's example as written, `run()` of a WASM job returning its stdout,
events, logs, results, nodes and agent calls, and errors carrying the server's message and
hint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bacalhau import (
    APIError,
    APIUnreachableError,
    AsyncClient,
    Client,
    Job,
    JobFailedError,
    ResultDownloadFailedError,
)
from bacalhau.assets import asset_path
from tests.conftest import REPO, ServeProcess, free_port
from tests.integration.test_network import Network, network
from tests.jobspecs import expected_count

pytestmark = [pytest.mark.integration]
__all__ = ["network"]  # the fixture: one requester process, compute nodes added by a test

POEM = "so much depends\nupon a red wheel\nbarrow\n"


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- sdk-example -->\n```python\n(.*?)```\n<!-- /sdk-example -->",
                      text, re.S)
    assert match, "the README's SDK example (between <!-- sdk-example --> markers) is missing"
    return match.group(1)


def client_of(server: ServeProcess) -> Client:
    return Client(server.host, server.port)


def test_the_readme_example_runs_against_a_real_node(bacalhau_server: ServeProcess,
                                                     tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(readme_example())
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=bacalhau_server.env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"stdout: {expected_count(POEM)}" in out
    assert f"result: {expected_count(POEM)}" in out
    assert "event: Job submitted" in out
    assert f"log (stdout): {expected_count(POEM).strip()}" in out
    assert re.search(r"^node: \S+ CONNECTED$", out, re.M), out
    assert (tmp_path / "wordcount-result" / "stdout").read_text() == expected_count(POEM)


def test_run_of_a_wasm_job_returns_its_stdout_and_events(bacalhau_server: ServeProcess,
                                                        tmp_path: Path) -> None:
    poem = tmp_path / "in.txt"
    poem.write_text("one two\nthree\n")
    events = []
    with client_of(bacalhau_server) as client:
        run = client.run(Job.wasm(asset_path("wordcount.wasm"), "/inputs/in.txt",
                                  inputs=[f"{poem}:/inputs/in.txt"], publisher="noop"),
                         timeout=60, on_event=events.append)
        assert run.stdout == expected_count("one two\nthree\n")
        assert run.state == "Completed" and run.exit_code == 0
        assert run.job.id.startswith("j-") and run.job.task.engine.type == "wasm"
        assert any(e.event.details.get("NewState") == "Completed" for e in events)
        assert [e.seq_num for e in events] == sorted(e.seq_num for e in events)

        assert client.alive()
        assert client.version()["GitVersion"]
        assert client.node_info().node_id == bacalhau_server.node_id
        (node,) = client.nodes()
        assert node.info.node_id == bacalhau_server.node_id
        assert client.node(node.info.node_id[:12]).membership == "APPROVED"
        assert [j.id for j in client.jobs()] == [run.job_id]


def test_a_failing_job_raises_with_its_reason(bacalhau_server: ServeProcess) -> None:
    def teleport_job() -> Job:
        job = Job.wasm(asset_path("wordcount.wasm"), publisher="noop")
        job.task.engine.type = "teleport"  # no node has this engine: the job fails
        return job

    with client_of(bacalhau_server) as client:
        with pytest.raises(JobFailedError) as caught:
            client.run(teleport_job(), timeout=60)
        assert caught.value.job.state.state_type == "Failed"
        assert caught.value.job.id in str(caught.value)
        assert "teleport" in str(caught.value)
        unchecked = client.run(teleport_job(), timeout=60, check=False)
        assert unchecked.state == "Failed" and unchecked.stdout == ""
        assert unchecked.exit_code is None


def test_server_errors_carry_message_and_hint(bacalhau_server: ServeProcess,
                                              tmp_path: Path) -> None:
    with client_of(bacalhau_server) as client:
        with pytest.raises(APIError) as missing:
            client.job("j-00000000-0000-4000-8000-000000000000")
        assert missing.value.status == 404
        assert "job not found" in missing.value.message
        daemon = Job.wasm(asset_path("sleep.wasm"), "60000", publisher="noop",
                          job_type="daemon")
        job_id = client.submit(daemon).job_id
        try:
            with pytest.raises(APIError) as no_results:
                client.results(job_id, tmp_path / "out")
            assert "bacalhau job logs" in no_results.value.hint
            assert f"Hint: {no_results.value.hint}" in str(no_results.value)
        finally:
            client.stop(job_id, "test over")
    with Client("127.0.0.1", free_port()) as nobody, pytest.raises(APIUnreachableError) as gone:
        nobody.alive()
    assert "bacalhau serve" in gone.value.hint


async def test_async_client_logs_are_an_async_iterator(bacalhau_server: ServeProcess) -> None:
    async with AsyncClient(bacalhau_server.host, bacalhau_server.port) as client:
        run = await client.run(Job.wasm(asset_path("probe.wasm"), "hello-async",
                                        publisher="noop"), timeout=60)
        lines = [line async for line in client.logs(run.job_id, follow=True)]
    assert [line.text for line in lines][:2] == ["probe", "hello-async"]
    assert {line.stream for line in lines} == {"stdout"}


def test_results_from_a_stopped_node_name_that_node_not_the_api(network: Network,
                                                                 tmp_path: Path) -> None:
    compute = network.add_compute(0)
    network.wait_connected([compute])
    requester = network.requester
    with Client(requester.host, requester.port) as client:
        run = client.run(Job.wasm(asset_path("wordcount.wasm"), "/inputs/in.txt",
                                  inputs=[f"{_poem(tmp_path)}:/inputs/in.txt"]), timeout=60)
        (execution,) = run.completed
        url = execution.published_result.params["URL"]
        compute.stop()
        with pytest.raises(ResultDownloadFailedError) as caught:
            client.results(run.job_id, tmp_path / "out")
    text = str(caught.value)
    assert execution.id in text and execution.node_id in text and url in text, text
    assert "bring that node back" in caught.value.hint
    assert not (tmp_path / "out").exists()


def _poem(tmp_path: Path) -> Path:
    path = tmp_path / "poem.txt"
    path.write_text(POEM)
    return path
