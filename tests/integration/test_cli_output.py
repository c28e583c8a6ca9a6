"""The output flags of the list-like commands end to end (issue 8, reference §7): the CLI run
as a subprocess against a real `bacalhau serve` (real HTTP, real SQLite), its stdout parsed as
a script would parse it. The terminal styling that `--no-style` removes only shows on a
terminal; tests/unit/test_cli_output.py checks that part."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess

import pytest
import yaml

from tests.conftest import ServeProcess
from tests.jobspecs import wordcount_job

pytestmark = [pytest.mark.integration]

BOX_OR_ANSI = re.compile(r"[\u2500-\u257f]|\x1b\[|^\s*[+|]", re.M)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def create(server: ServeProcess, labels: dict[str, str] | None = None) -> str:
    spec = wordcount_job(extra={"Labels": labels} if labels else None)
    job_id = ok(server.cli("create", "--wait", "--id-only", input=yaml.safe_dump(spec),
                           timeout=90)).stdout.strip()
    assert job_id.startswith("j-")
    return job_id


def test_list_executions_and_node_list_output_flags(bacalhau_server: ServeProcess) -> None:
    server = bacalhau_server
    job_id = create(server)
    canary = create(server, {"bacalhau_canary": "true"})

    # `list --output csv --hide-header --wide`: no header, whole ids, canary jobs left out.
    listed = ok(server.cli("list", "--output", "csv", "--hide-header", "--wide",
                           "--limit", "100")).stdout
    rows = list(csv.reader(io.StringIO(listed)))
    assert [r[1] for r in rows] == [job_id]
    assert rows[0][-1] == "Completed" and "ID" not in rows[0]
    with_canary = ok(server.cli("list", "--output", "csv", "--wide", "--labels",
                                "bacalhau_canary=true")).stdout
    header, *canary_rows = list(csv.reader(io.StringIO(with_canary)))
    assert header[:2] == ["CREATED", "ID"] and [r[1] for r in canary_rows] == [canary]

    # `job executions ID --output json --pretty`: the wire items, indented.
    shown = ok(server.cli("job", "executions", job_id, "--output", "json", "--pretty")).stdout
    executions = json.loads(shown)
    assert [e["JobID"] for e in executions] == [job_id]
    assert executions[0]["NodeID"] == server.node_id
    assert shown.startswith("[\n  {\n    \"")
    compact = ok(server.cli("job", "executions", job_id, "--output", "json")).stdout
    assert json.loads(compact) == executions and compact.count("\n") == 1

    # `node list --no-style`: plain columns, no box characters or escapes; --wide: full id.
    nodes = ok(server.cli("node", "list", "--no-style", "--wide")).stdout
    assert not BOX_OR_ANSI.search(nodes), nodes
    header_line, *node_lines = nodes.splitlines()
    assert header_line.split()[:4] == ["ID", "TYPE", "APPROVAL", "STATUS"]
    assert [line.split()[0] for line in node_lines] == [server.node_id]

    # `node list --show`: the column groups asked for, in the documented order
    shown = ok(server.cli("node", "list", "--show", "features,version", "--output", "csv",
                          "--wide")).stdout
    [header, row] = list(csv.reader(io.StringIO(shown)))
    assert header == ["ID", "TYPE", "APPROVAL", "STATUS", "VERSION", "ENGINES", "INPUTS",
                      "OUTPUTS"]
    assert row[0] == server.node_id and row[4]
    assert "wasm" in row[5].split() and "inline" in row[6].split() and "local" in row[7].split()
    bad = server.cli("node", "list", "--show", "colours")
    assert bad.returncode != 0 and "unknown column group 'colours'" in bad.stderr
