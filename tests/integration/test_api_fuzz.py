"""Schemathesis against a real `bacalhau serve --orchestrator --compute` over every operation of
its own `/api/v1/openapi.json`: examples, coverage, fuzzing and stateful phases (links submit ->
describe / history / executions / stop), bounded by examples per operation and a wall-clock
timeout. It must find no 5xx, no crash or hang, only documented status codes and content
types, and bodies (APIError for every failure) that match their schemas.

Checks left out, each on purpose:
- `negative_data_rejection` / `positive_data_acceptance`: the server decodes as Go does (null =
  absent, case-insensitive keys, numeric strings for integers) and validates job semantics
  the schema cannot express (env var names, paging tokens), so "schema-invalid" bodies may be
  accepted and "schema-valid" ones refused, both correctly.
- `use_after_free`: DELETE /jobs/{id} *stops* a job; it stays describable, as in Bacalhau.
- `allow_header_conformance`: `/jobs/diff` also matches `/jobs/{id}` (as in Bacalhau's
  router), so its 405 lists the methods of both paths.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServeProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("BACALHAU_FUZZ_EXAMPLES", "25"))
TIMEOUT_S = float(os.environ.get("BACALHAU_FUZZ_TIMEOUT", "240"))
EXCLUDED = ("negative_data_rejection", "positive_data_acceptance", "use_after_free",
            "allow_header_conformance")


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("schemathesis")
    if not found:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return [found]


def _figure(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"no {pattern!r} in schemathesis output:\n{text[-3000:]}"
    return int(match.group(1))


def test_schemathesis_finds_nothing(bacalhau_server: ServeProcess, tmp_path: Path,
                                    request: pytest.FixtureRequest) -> None:
    cmd = [
        *_schemathesis(), "run", f"{bacalhau_server.url}/api/v1/openapi.json",
        "--max-examples", str(EXAMPLES), "--seed", "20261129", "--workers", "1",
        "--request-timeout", "20", "--max-response-time", "20",
        "--exclude-checks", ",".join(EXCLUDED),
        "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml"),
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "", "COLUMNS": "120"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                          cwd=tmp_path)
    out = proc.stdout + proc.stderr
    tested = _figure(r"Tested:\s+(\d+)", out)
    total = _figure(r"Selected:\s+\d+/(\d+)", out)
    cases = _figure(r"(\d+) generated", out)
    unique = re.search(r"(\d+) found (\d+) unique failures?", out)
    failures = int(unique.group(2)) if unique else 0
    summary = (f"schemathesis: {tested}/{total} operations tested, {cases} cases generated, "
               f"{failures} failures (exit {proc.returncode})")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # shown in the CI log even while output is captured
        reporter.write_line("\n" + summary)
    assert proc.returncode == 0 and failures == 0, out[-8000:]
    assert tested == total >= 25, out[-3000:]
    assert cases > 500
    # nothing the server did not mean to answer: no handler traceback in its log
    assert "failed (request" not in bacalhau_server.logs(), bacalhau_server.logs()[-4000:]
    assert bacalhau_server.proc is not None and bacalhau_server.proc.poll() is None
