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

import json
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


FUZZ_KEY = "fuzz-key-" + "0123456789abcdef"


@pytest.mark.parametrize("users", [False, True], ids=["anonymous", "with-users"])
def test_schemathesis_finds_nothing(tmp_path: Path, request: pytest.FixtureRequest,
                                    users: bool) -> None:
    """Anonymous node: every operation; node with users: the same with a Bearer key, its
    document requiring credentials, and schemathesis' `ignored_auth` check (a request without
    or with wrong credentials must be refused) among `all` the checks."""
    extra: list[str] = []
    headers: list[str] = []
    examples = EXAMPLES
    if users:
        config = tmp_path / "users.yaml"
        config.write_text(json.dumps({"API": {"Auth": {"Users": [
            {"Alias": "fuzz", "APIKey": FUZZ_KEY, "Capabilities": [{"Actions": ["*"]}]}]}}}))
        extra = ["-c", str(config)]
        headers = ["--header", f"Authorization: Bearer {FUZZ_KEY}"]
        examples = max(1, EXAMPLES // 2)
    server = ServeProcess(data_dir=tmp_path / "node", extra_args=extra)
    server.start()
    try:
        _fuzz(server, tmp_path, request, headers, examples)
        if users:
            assert FUZZ_KEY not in server.logs()
    finally:
        server.stop()


def _fuzz(server: ServeProcess, tmp_path: Path, request: pytest.FixtureRequest,
          headers: list[str], examples: int) -> None:
    cmd = [
        *_schemathesis(), "run", f"{server.url}/api/v1/openapi.json", *headers,
        "--max-examples", str(examples), "--seed", "20261129", "--workers", "1",
        "--request-timeout", "20", "--max-response-time", "20",
        "--checks", "all", "--exclude-checks", ",".join(EXCLUDED),
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
    auth = "with users" if headers else "anonymous"
    summary = (f"schemathesis ({auth}): {tested}/{total} operations tested, "
               f"{cases} cases generated, {failures} failures (exit {proc.returncode})")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:  # shown in the CI log even while output is captured
        with capture.global_and_fixture_disabled():
            print("\n" + summary, flush=True)
    else:
        print(summary)
    assert proc.returncode == 0 and failures == 0, out[-8000:]
    assert tested == total >= 25, out[-3000:]
    assert cases > 20 * total
    # nothing the server did not mean to answer: no handler traceback in its log
    assert "failed (request" not in server.logs(), server.logs()[-4000:]
    assert server.proc is not None and server.proc.poll() is None
