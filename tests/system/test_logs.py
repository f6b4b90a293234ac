"""LOG_FORMAT=json: every line of every process is one JSON object, the lines of a command join on
its plan and trace, and no secret (API key, nkey seed, database password, signature) is in any."""

from __future__ import annotations

import json
import time
from pathlib import Path

from services.runtime.embedded import free_port
from tests.system.test_agentops_up import get, post, start, stop, wait_for_line


def test_json_lines_join_on_the_plan_and_hold_no_secret(tmp_path: Path) -> None:
    home, port = tmp_path / "state", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(home, port, LOG_FORMAT="json", LOG_LEVEL="debug", OTEL_TRACES_EXPORTER="console")
    try:
        lines = wait_for_line(proc, "Dashboard")
        key = (home / "admin-key").read_text().strip()
        command = {"command": "deploy llama-3.1 8B for logged", "env": "prod"}
        answer = post(f"{base}/api/agent/command", command, key)
        # pending approval in the read model: the planner and guardian lines were written before
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            plan = get(f"{base}/api/deployments/{answer['plan_id']}", key)[1].get("plan", {})
            if plan.get("status") == "pending_approval":
                break
            time.sleep(0.1)
    finally:
        out = stop(proc)
    text = "".join(lines) + out
    records, other = [], []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            other.append(line)
    # the console span exporter prints multi-line JSON documents of its own; everything else is ours
    ours = [r for r in records if isinstance(r, dict) and "service" in r]
    assert {"supervisor", "gateway", "planner", "guardian", "auditor"} <= {r["service"] for r in ours}
    assert all({"time", "service", "level", "message"} <= set(r) for r in ours)
    about = [r for r in ours if r.get("plan_id") == answer["plan_id"]]
    assert {r["service"] for r in about} >= {"planner", "guardian"}, "no line names the plan it handled"
    assert all(r.get("event_id") and r.get("event_type") for r in about)
    assert len({r["trace_id"] for r in about if "trace_id" in r}) == 1  # one command, one trace
    secrets = [key, *(p.read_text().strip() for p in (home / "identity").glob("*.nk"))]
    passwords = home / "secrets" / "db-passwords.json"
    secrets += [v for v in json.loads(passwords.read_text()).values() if isinstance(v, str)]
    secrets.append((home / "postgres" / "superuser.password").read_text().strip())
    for secret in secrets:
        assert secret and secret not in text, "a secret reached the logs"
    assert "Agentops-Signature" not in text and "#key=" not in text
