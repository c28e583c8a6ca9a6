"""The output flags of list-like and single-object commands (issue 8, reference §7): the
formatter in `bacalhau.cli.output` for every format with `--hide-header`/`--wide`/`--no-style`,
CSV quoting, JSON pretty vs compact, and the flags as the commands take them (help, defaults,
what they print) against the fake API of `test_cli_support`."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.main import cli
from bacalhau.cli.output import CELL_WIDTH, OutputOptions, render, render_csv, render_table
from bacalhau.version import build_version_info
from tests.unit.test_cli_support import EXEC_ID, JOB_ID, NODE_ID, FakeBacalhau, fake_api, wire_job

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"
HEADERS = ["ID", "NAME", "NOTE"]
LONG = "x" * (CELL_WIDTH + 25)
ANSI = re.compile(r"\x1b\[")
BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters


def rows(out: OutputOptions) -> list[list[str]]:
    return [[out.id(JOB_ID), "first", "plain"], [out.id(EXEC_ID), "second", LONG]]


DATA = [{"ID": JOB_ID, "Name": "first"}, {"ID": EXEC_ID, "Name": "second", "Labels": {"a": "b"}}]


def run_cli(server: FakeBacalhau | None, *args: str) -> Result:
    port = str(server.port) if server else "1"
    return CliRunner().invoke(cli, ["--api-port", port, *args], terminal_width=200)


# ---------------------------------------------------------------- the formatter


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "yaml"])
@pytest.mark.parametrize("hide_header", [False, True])
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("no_style", [False, True])
def test_every_format_with_every_flag(fmt: str, hide_header: bool, wide: bool,
                                      no_style: bool) -> None:
    out = OutputOptions(format=fmt, hide_header=hide_header, wide=wide, no_style=no_style)
    text = render(out, HEADERS, rows(out), DATA)
    assert text.endswith("\n")
    if fmt in ("json", "yaml"):
        # Documents are the wire items, whatever the table flags say.
        parsed = json.loads(text) if fmt == "json" else yaml.safe_load(text)
        assert parsed == DATA
        return
    lines = text.splitlines()
    if fmt == "csv":
        parsed_rows = list(csv.reader(io.StringIO(text)))
        body = parsed_rows if hide_header else parsed_rows[1:]
        assert (parsed_rows[0] == HEADERS) is not hide_header
        assert [r[0] for r in body] == ([JOB_ID, EXEC_ID] if wide else ["j-0a1b2c3d", "e-9f8e7d6c"])
        assert body[1][2] == LONG  # CSV is for machines: never truncated
        return
    assert (lines[0].split() == HEADERS) is not hide_header
    body = lines[int(not hide_header):]
    assert len(body) == 2
    assert body[0].split()[0] == (JOB_ID if wide else "j-0a1b2c3d")
    if wide:
        assert LONG in body[1]
    else:
        assert LONG not in text
        ellipsis = "..." if no_style else "\u2026"
        assert body[1].rstrip().endswith(LONG[: CELL_WIDTH - len(ellipsis)] + ellipsis)
    assert not ANSI.search(text) and not BOX.search(text)  # off a terminal: plain


def test_styled_table_on_a_terminal_and_no_style() -> None:
    styled = render_table(HEADERS, rows(OutputOptions()), OutputOptions(), terminal=True)
    assert ANSI.search(styled) and BOX.search(styled)  # bold header, rule under it
    plain = render_table(HEADERS, rows(OutputOptions()), OutputOptions(no_style=True),
                         terminal=True)
    assert not ANSI.search(plain) and not BOX.search(plain)
    assert plain.isascii()
    assert plain.splitlines()[0].split() == HEADERS


def test_empty_table_with_hidden_header_prints_nothing() -> None:
    assert render(OutputOptions(hide_header=True), HEADERS, [], []) == ""
    assert render(OutputOptions(format="csv", hide_header=True), HEADERS, [], []) == ""
    assert render(OutputOptions(), HEADERS, [], []).split() == HEADERS


def test_wide_table_is_not_folded_off_a_terminal() -> None:
    cells = [["y" * 200, "z" * 200]]
    text = render_table(["A", "B"], cells, OutputOptions(wide=True))
    (line,) = text.splitlines()[1:]
    assert "y" * 200 in line and "z" * 200 in line


@pytest.mark.parametrize(
    "cell",
    ["a,b", 'say "hi"', "two\nlines", "carriage\rreturn", ",", '"', " lead", "", "plain"],
)
def test_csv_quoting_round_trips(cell: str) -> None:
    text = render_csv(["H1", "H2"], [[cell, "after"]], OutputOptions(format="csv"))
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["H1", "H2"], [cell, "after"]]
    needs_quotes = any(c in cell for c in ',"\n\r')
    assert text.splitlines()[1].startswith('"') is needs_quotes
    assert "\r\n" not in text.replace("carriage\rreturn", "")  # rows end in LF, as Go's


def test_json_is_compact_unless_pretty() -> None:
    compact = render(OutputOptions(format="json"), HEADERS, [], DATA)
    pretty = render(OutputOptions(format="json", pretty=True), HEADERS, [], DATA)
    assert compact.count("\n") == 1 and ": " not in compact
    assert pretty.startswith("[\n  {\n    \"ID\": ")
    assert json.loads(compact) == json.loads(pretty) == DATA


# ---------------------------------------------------------------- the commands

LIST_COMMANDS = [
    ["job", "list"], ["list"], ["job", "executions", JOB_ID], ["job", "history", JOB_ID],
    ["job", "versions", JOB_ID], ["node", "list"], ["version"],
]
DOC_COMMANDS = [["job", "describe", JOB_ID], ["describe", JOB_ID], ["node", "describe", "n-1"],
                ["agent", "alive"], ["agent", "version"], ["agent", "node"], ["agent", "config"]]


def _help(command: list[str]) -> str:
    words = [w for w in command if w not in (JOB_ID, "n-1")]
    result = CliRunner().invoke(cli, [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output.split("Options:", 1)[1]


def _flags(options: str) -> list[str]:
    return re.findall(r"^  (?:-\w, )?(--[\w-]+)", options, flags=re.M)


@pytest.mark.parametrize("command", LIST_COMMANDS, ids=" ".join)
def test_list_commands_take_every_output_flag_sorted(command: list[str]) -> None:
    options = _help(command)
    flags = _flags(options)
    for flag in ("--output", "--pretty", "--hide-header", "--no-style", "--wide"):
        assert flag in flags, flag
    assert "--output [table|csv|json|yaml]" in options and "[default: table]" in options
    assert flags == sorted(flags, key=lambda f: f.lstrip("-").lower())


@pytest.mark.parametrize("command", DOC_COMMANDS, ids=" ".join)
def test_single_object_commands_take_output_and_pretty(command: list[str]) -> None:
    flags = _flags(_help(command))
    assert "--output" in flags and "--pretty" in flags
    assert "--wide" not in flags and "--hide-header" not in flags
    assert "--output [json|yaml]" in _help(command)


def test_job_list_hides_canary_jobs_by_default(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", JOBS, {"Items": [wire_job()], "NextToken": ""})
    assert run_cli(fake_api, "job", "list").exit_code == 0
    assert run_cli(fake_api, "list", "--labels", "team=data").exit_code == 0
    default, chosen = fake_api.requests
    assert default.param("labels") == "bacalhau_canary != true"
    assert chosen.param("labels") == "team=data"  # --labels replaces the default
    assert "[default: bacalhau_canary != true]" in _help(["job", "list"])


def test_job_list_csv_without_header_with_full_ids(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", JOBS, {"Items": [wire_job("Running")], "NextToken": "more"})
    result = run_cli(fake_api, "list", "--output", "csv", "--hide-header", "--wide")
    assert result.exit_code == 0, result.output
    (row,) = list(csv.reader(io.StringIO(result.output)))
    assert row[1:] == [JOB_ID, JOB_ID, "wasm", "batch", "Running"]
    assert "next-token" not in result.output  # no hint in machine output
    short = run_cli(fake_api, "list", "--output", "csv")
    header, first = list(csv.reader(io.StringIO(short.output)))
    assert header == ["CREATED", "ID", "NAME", "JOB", "TYPE", "STATE"]
    assert first[1] == "j-0a1b2c3d"


def test_executions_json_pretty_and_compact(fake_api: FakeBacalhau) -> None:
    items = [{"ID": EXEC_ID, "NodeID": NODE_ID, "ComputeState": {"StateType": 9}}]
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/executions", {"Items": items, "NextToken": ""})
    pretty = run_cli(fake_api, "job", "executions", JOB_ID, "--output", "json", "--pretty")
    compact = run_cli(fake_api, "job", "executions", JOB_ID, "--output=json")
    assert json.loads(pretty.output) == json.loads(compact.output) == items
    assert pretty.output.startswith("[\n  {") and compact.output == json.dumps(
        items, separators=(",", ":")) + "\n"
    wide = run_cli(fake_api, "job", "executions", JOB_ID, "--wide", "--no-style=true")
    assert EXEC_ID in wide.output and NODE_ID in wide.output


def test_single_object_json_is_compact_unless_pretty(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", "/api/v1/agent/alive", {"Status": "OK"})
    assert run_cli(fake_api, "agent", "alive", "--output", "json").output == '{"Status":"OK"}\n'
    pretty = run_cli(fake_api, "agent", "alive", "--output", "json", "--pretty").output
    assert pretty == '{\n  "Status": "OK"\n}\n'


def test_node_list_wide_and_no_style(fake_api: FakeBacalhau) -> None:
    node = {"Info": {"NodeID": NODE_ID, "NodeType": "Requester"}, "Membership": "APPROVED",
            "ConnectionState": {"Status": "CONNECTED"}}
    fake_api.on("GET", "/api/v1/orchestrator/nodes", {"Nodes": [node], "NextToken": ""})
    plain = run_cli(fake_api, "node", "list", "--no-style", "--wide", "--hide-header")
    assert plain.exit_code == 0, plain.output
    (line,) = plain.output.splitlines()
    assert line.split() == [NODE_ID, "Requester", "APPROVED", "CONNECTED"]


def test_version_formats(fake_api: FakeBacalhau) -> None:
    server = {"GitVersion": "v1.9.0-py0.1.0", "GitCommit": "abc", "BuildDate": "2026-01-01"}
    fake_api.on("GET", "/api/v1/agent/version", server)
    doc = json.loads(run_cli(fake_api, "version", "--output", "json").output)
    assert doc == {"clientVersion": build_version_info(), "serverVersion": server}
    mine = build_version_info()["GitVersion"]
    assert run_cli(fake_api, "version", "--output", "csv").output == (
        f"CLIENT,SERVER\n{mine},v1.9.0-py0.1.0\n")
    assert run_cli(fake_api, "version", "--hide-header").output.split() == [
        mine, "v1.9.0-py0.1.0"]
    alone = yaml.safe_load(run_cli(None, "version", "--client", "--output", "yaml").output)
    assert alone == {"clientVersion": build_version_info()}


def test_version_without_a_server_as_json_still_answers() -> None:
    result = run_cli(None, "version", "--output", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert list(doc) == ["clientVersion"]
    assert result.stderr.startswith("No server version: cannot reach the Bacalhau API")


def test_a_bad_format_is_refused_with_the_choices() -> None:
    result = run_cli(None, "job", "list", "--output", "xml")
    assert result.exit_code == 2
    assert "'xml' is not one of 'table', 'csv', 'json', 'yaml'" in result.output
    doc_only = run_cli(None, "node", "describe", "n-1", "--output", "csv")
    assert doc_only.exit_code == 2 and "'csv' is not one of 'json', 'yaml'" in doc_only.output
