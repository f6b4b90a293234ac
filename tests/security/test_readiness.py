"""Health never says ready while the audit log is stuck: /readyz reports the auditor's lag."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.infra import for_service, service_app
from tests.integration.conftest import System, system_settings
from tests.keys import headers

pytestmark = pytest.mark.integration


async def test_ready_reports_the_audit_lag(system: System) -> None:
    answer = await system.command("deploy llama-3.1 8B for lag-bot", env="staging")
    await system.wait_status(answer["plan_id"], "deployed")
    ready = await system.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    audit = ready.json()["audit"]
    assert audit["stream_last_seq"] >= 5 and audit["behind"] >= 0 and "oldest_unaudited_seconds" in audit


async def test_a_stopped_auditor_makes_the_system_degraded_and_it_says_why(nats_url: str, database_url: str) -> None:
    settings = system_settings(nats_url, database_url, audit_lag_max_events=3, audit_lag_max_seconds=3600).model_copy(
        update={"command_wait_seconds": 0.1}  # nobody plans here: answer 202 at once
    )
    async with AsyncExitStack() as stack:
        app = service_app("gateway", for_service(settings, "gateway"))  # the gateway alone: nobody audits what it sends
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g", headers=headers("alice"))
        )
        for i in range(5):
            sent = await client.post("/api/agent/command", json={"command": f"deploy llama 3.1 8b for lag-{i}"})
            assert sent.status_code in (200, 202)
        ready = await client.get("/readyz")
        body = ready.json()
        assert ready.status_code == 503 and body["status"] == "degraded"
        assert body["audit"]["behind"] >= 5 and any("audit log is" in r for r in body["reasons"])

        # the auditor comes back and catches up: ready again
        await stack.enter_async_context(service_app("auditor", for_service(settings, "auditor")))
        for _ in range(200):
            ready = await client.get("/readyz")
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert ready.json()["status"] == "ready" and ready.json()["audit"]["behind"] == 0
