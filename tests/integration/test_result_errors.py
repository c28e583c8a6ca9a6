"""`job get` blames the right party, across real processes: a requester (`serve
--orchestrator`, API on 127.0.0.1) and a compute node (`serve --compute`, its `local` result
server on 127.0.0.2) over libp2p. With the compute node stopped, the API still answers and the
download error names the execution, the node and the URL, and says what to do; it does not
send the user to the API. Started again with the same data dir, the node serves the result and
the same `job get` succeeds, as the hint says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_network import Network, network
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]
__all__ = ["network"]  # the fixture: one requester, compute nodes added by the test


def test_job_get_with_the_publishing_node_stopped_names_that_node(network: Network,
                                                                   tmp_path: Path) -> None:
    compute = network.add_compute(0)
    network.wait_connected([compute])
    text = "results outlive nothing\n"
    job_id = network.submit(wordcount_job(text))
    assert network.wait_terminal(job_id, 60)["StateType"] == "Completed"
    (execution,) = network.executions(job_id)
    url = execution["PublishedResult"]["Params"]["URL"]
    assert url.startswith(f"http://{compute.host}:{compute.publisher_port}/")

    compute.stop()
    out = tmp_path / "out"
    got = network.requester.cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 1
    error = got.stderr
    assert (f"could not download the result of execution {execution['ID']} from compute node "
            f"{execution['NodeID']} (GET {url}): cannot connect to "
            f"{compute.host}:{compute.publisher_port} (connection refused)") in error, error
    assert "bring that node back" in error and "-p s3://BUCKET/PREFIX or -p ipfs" in error
    assert "cannot reach the Bacalhau API" not in error and "API" not in error, error
    assert not out.exists()

    compute.start()  # the same data dir: it serves its results again
    got = network.requester.cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 0, got.stdout + got.stderr
    assert (out / "stdout").read_text() == expected_count(text)

