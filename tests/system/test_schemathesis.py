"""Property-based fuzzing of the gateway's OpenAPI with schemathesis: no input gets a 5xx, and
every answer is one the document declares, in the declared shape (the contract checks).

Runs against a real `agentops up` (embedded NATS and PostgreSQL) with an admin key, so every
route is reached past authentication; the number of examples per operation is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.runtime.embedded import free_port
from tests.keys import api_keys_env, secret
from tests.system.test_agentops_up import stop, wait_for_line

pytestmark = pytest.mark.integration


CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


def test_no_generated_request_gets_a_server_error_or_an_undeclared_answer(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "IDENTITY_DIR")}
    env.update(
        AGENTOPS_HOME=str(tmp_path / "state"),
        PYTHONUNBUFFERED="1",
        API_KEYS=api_keys_env(),
        COMMAND_WAIT_SECONDS="0.5",
        COMMAND_RATE_PER_MINUTE="100000",
        COMMAND_BURST="100000",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.runtime.cli", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_line(proc, "AgentOps is up")
        st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        result = subprocess.run(
            [
                st,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "15",
                "--header",
                f"Authorization: Bearer {secret('root')}",
                "--request-timeout",
                "10",
                "--suppress-health-check",
                "all",
                "--exclude-path",
                "/api/events",  # endless event streams; tests/integration/test_audit_api.py and
                "--exclude-path",  # test_seed_client.py cover them
                "/api/events/{plan_id}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        stop(proc)
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    generated = re.search(r"(\d+) generated", report)
    assert generated and int(generated.group(1)) >= 100, report  # it really exercised the API
