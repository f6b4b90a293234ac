"""`agentops up` on the embedded default, as a user runs it: a subprocess, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from services.runtime.embedded import free_port

pytestmark = pytest.mark.integration


def get(url: str, key: str = "") -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=auth(key)), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def post(url: str, body: dict, key: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json", **auth(key)})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def start(home: Path, port: int, **extra: str) -> subprocess.Popen[str]:
    """`agentops up` on the embedded default, as a user runs it (plus any settings in `extra`)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "EXECUTOR_MODE", "IDENTITY_DIR")
    }
    env.update(AGENTOPS_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return subprocess.Popen(
        [sys.executable, "-m", "services.runtime.cli", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 90) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if needle in line:
            return lines
    proc.kill()
    raise AssertionError(f"never printed {needle!r}:\n{''.join(lines)}")


class _AnyId(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith("k_")

    __hash__ = str.__hash__


ANY_ID = _AnyId("k_*")


def dashboard_key(lines: list[str], base: str) -> str:
    (line,) = [line for line in lines if "Dashboard" in line]
    url = line.split()[-1]
    assert url.startswith(f"{base}/#key=aok_")
    return url.split("#key=", 1)[1]


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def test_up_serves_ready_deploys_and_keeps_data_across_a_restart(tmp_path: Path) -> None:
    home, port = tmp_path / "state", free_port()
    base = f"http://127.0.0.1:{port}"

    proc = start(home, port)
    try:
        lines = wait_for_line(proc, "Dashboard")
        assert any(base in line for line in lines)
        key = dashboard_key(lines, base)
        status, ready = get(f"{base}/readyz")
        assert status == 200 and ready["broker"] == "ok" and ready["database"] == "ok"
        assert get(f"{base}/api/deployments")[0] == 401  # closed without a key
        assert get(f"{base}/api/me", key) == (200, {"user_id": "admin", "roles": ["admin"], "key_id": ANY_ID})
        command = {"command": "deploy llama-3.1 8B for chatbot-x", "env": "staging"}
        answer = post(f"{base}/api/agent/command", command, key)
        assert answer["status"] == "success"
        for _ in range(100):  # the read model follows the events by a few milliseconds
            if get(f"{base}/api/deployments/{answer['plan_id']}", key)[1].get("plan", {}).get("status") == "deployed":
                break
            time.sleep(0.1)
        closed_doors(home)
        status = subprocess.run(
            [sys.executable, "-m", "services.runtime.cli", "status"],
            env={**os.environ, "AGENTOPS_HOME": str(home), "GATEWAY_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0 and status.stdout.startswith("ready"), status.stdout + status.stderr
        assert "events behind the stream" in status.stdout
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert "AgentOps stopped." in out
    assert not (home / "runtime.json").exists()

    proc = start(home, port)
    try:
        again = dashboard_key(wait_for_line(proc, "Dashboard"), base)
        assert again == key  # the local admin key is made once and kept
        status, listed = get(f"{base}/api/deployments", key)
        assert status == 200 and listed["count"] == 1
        plans = listed["deployments"]
        assert [p["plan_id"] for p in plans] == [answer["plan_id"]]
        assert plans[0]["status"] == "deployed"
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_up_sandbox_drives_a_moto_server_through_boto3(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "EXECUTOR_MODE", "IDENTITY_DIR")
    }
    env.update(AGENTOPS_HOME=str(tmp_path / "state"), PYTHONUNBUFFERED="1", POLL_INITIAL_SECONDS="0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.runtime.cli", "up", "--port", str(port), "--sandbox"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = wait_for_line(proc, "Dashboard")
        assert any("sandbox: moto server" in line for line in lines)
        key = dashboard_key(lines, base)
        assert get(f"{base}/readyz")[1]["executor_mode"] == "sandbox"
        answer = post(f"{base}/api/agent/command", {"command": "deploy llama-3.1 8B for moto-bot"}, key)
        plan: dict = {}  # type: ignore[type-arg]
        for _ in range(100):
            plan = get(f"{base}/api/deployments/{answer['plan_id']}", key)[1].get("plan", {})
            if plan.get("status") in ("deployed", "failed"):
                break
            time.sleep(0.1)
        assert plan["status"] == "deployed" and plan["details"]["mode"] == "sandbox", plan
    finally:
        stop(proc)
    assert proc.returncode == 0


def closed_doors(home: Path) -> None:
    """What `agentops up` leaves reachable to someone on this machine without its secrets."""
    import asyncio
    import json
    import stat

    import nats
    import psycopg

    runtime = json.loads((home / "runtime.json").read_text())
    for secret in [home / "runtime.json", *(home / "identity").glob("*.nk"), *(home / "secrets").iterdir()]:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert stat.S_IMODE((home / "identity").stat().st_mode) == 0o700
    for service in ("gateway", "planner", "guardian", "executor", "auditor", "notifier"):
        # each service process is handed its own seed and the public keys, nothing else
        assert {p.name for p in (home / "run" / service).iterdir()} == {f"{service}.nk", "signers.json"}

    async def anonymous() -> str:
        try:
            nc = await nats.connect(runtime["nats_url"], allow_reconnect=False, max_reconnect_attempts=0)
        except Exception as exc:
            return str(exc)
        await nc.close()
        return "connected"

    assert "Authorization Violation" in asyncio.run(anonymous())

    async def published_keys() -> dict:  # type: ignore[type-arg]
        seed = (home / "identity" / "cli.nk").read_text().strip()
        nc = await nats.connect(runtime["nats_url"], nkeys_seed_str=seed, inbox_prefix="_INBOX_cli")
        try:
            entry = await (await nc.jetstream().key_value("agentops-signers")).get("signers")
            return json.loads(entry.value or b"{}")  # type: ignore[no-any-return]
        finally:
            await nc.close()

    assert asyncio.run(published_keys()) == json.loads((home / "identity" / "signers.json").read_text())
    port = runtime["database_url"].rsplit(":", 1)[1].split("/")[0]
    for user in ("postgres", "agentops_auditor"):
        try:
            psycopg.connect(f"postgresql://{user}@127.0.0.1:{port}/agentops", connect_timeout=5).close()
            raise AssertionError(f"{user} logged in without a password")
        except psycopg.OperationalError as exc:
            assert "password" in str(exc)
