"""Reading the log over HTTP: paginated queries, a plan's timeline, SSE that resumes, AsyncAPI."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from services.runtime.embedded import free_port
from tests.integration.conftest import System, running, system_settings
from tests.keys import secret

pytestmark = pytest.mark.integration


async def test_audit_query_pages_and_filters(system: System) -> None:
    plan_id = (await system.command("deploy llama-3.1 8B for audit-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    await system.settled()
    seen, cursor = [], 0
    while True:
        page = (await system.client.get("/api/audit", params={"plan_id": plan_id, "limit": 2, "cursor": cursor})).json()
        seen += page["events"]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert [e["type"] for e in seen] == [
        "intent.received",
        "plan.proposed",
        "deployment.requested",
        "deployment.status",
        "deployment.status",
    ]
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen) and all(len(e["hash"]) == 64 for e in seen)
    only = (await system.client.get("/api/audit", params={"type": "deployment.*", "plan_id": plan_id})).json()
    assert {e["type"] for e in only["events"]} == {"deployment.requested", "deployment.status"}
    bad = await system.client.get("/api/audit", params={"type": "'; drop"})
    assert bad.status_code == 422

    timeline = (await system.client.get(f"/api/deployments/{plan_id}/history")).json()
    assert [(t["type"], t["actor"]) for t in timeline][:3] == [
        ("intent.received", "alice"),
        ("plan.proposed", "planner"),
        ("deployment.requested", "guardian"),
    ]
    assert all(t["occurred_at"] for t in timeline)
    assert (await system.client.get("/api/deployments/nope/history")).status_code == 404


@contextlib.asynccontextmanager
async def served(system_app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(system_app, host="127.0.0.1", port=port, lifespan="off", log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_events(response: httpx.Response, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    block: dict[str, str] = {}

    async def collect() -> None:
        async for line in response.aiter_lines():
            if line == "":
                if "id" in block:
                    name = block.get("event", "message")  # an unnamed event is a "message"
                    found.append({"id": int(block["id"]), "event": name, "data": json.loads(block["data"])})
                    if len(found) >= count:
                        return
                block.clear()
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                block[key] = value.strip()

    await asyncio.wait_for(collect(), timeout)
    return found


async def test_sse_streams_events_and_resumes_after_a_dropped_connection(nats_url: str, database_url: str) -> None:
    settings = system_settings(nats_url, database_url)
    runner = running(settings)
    async with runner as client:
        system = System(client, settings)
        async with served(runner.app) as base, httpx.AsyncClient(base_url=base, timeout=None) as http:
            url = f"/api/events?api_key={secret('vic')}&after=0"
            async with http.stream("GET", url) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                first = (await system.command("deploy llama-3.1 8B for sse-one", env="staging"))["plan_id"]
                got = await read_events(stream, 5)
            # the connection dropped; more happens meanwhile
            second = (await system.command("deploy llama-3.1 8B for sse-two", env="staging"))["plan_id"]
            await system.wait_status(second, "deployed")
            headers = {"Last-Event-ID": str(got[-1]["id"]), "Authorization": f"Bearer {secret('vic')}"}
            async with http.stream("GET", "/api/events", headers=headers) as stream:
                more = await read_events(stream, 5)
            unauthorized = await http.get("/api/events")
            assert unauthorized.status_code == 401
    seqs = [e["id"] for e in got + more]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no repeat across the reconnection
    assert got[0]["data"]["plan_id"] == first and got[0]["event"] == "intent.received"
    assert second in {e["data"]["plan_id"] for e in more}


async def test_asyncapi_lists_every_subject_with_its_payload(system: System) -> None:
    response = await system.client.get("/asyncapi", headers={"Authorization": ""})
    assert response.status_code == 200
    doc = response.json()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    for subject in (
        "agentops.intent.received",
        "agentops.plan.proposed",
        "agentops.approval.requested",
        "agentops.deployment.status",
        "agentops.notification.failed",
    ):
        assert subject in addresses, subject
    assert "PlanProposed" in json.dumps(doc["components"]["schemas"]) or "plan.proposed" in json.dumps(doc)
