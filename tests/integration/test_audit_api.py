"""Reading the log over HTTP: paginated queries, a plan's timeline, SSE that resumes, AsyncAPI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from services.runtime.embedded import free_port
from tests.infra import eventually
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
async def served(system_app: Any, send_buffer: int | None = None) -> AsyncIterator[str]:
    """The app on a real uvicorn; `send_buffer` shrinks each connection's kernel send buffer (the
    accepted sockets inherit it from the listening one), so a client that does not read fills it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(system_app, host="127.0.0.1", port=port, lifespan="off", log_level="error"))
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listening.bind(("127.0.0.1", port))
    task = asyncio.create_task(server.serve(sockets=[listening]))
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


EVENTS = 300  # 60 commands: more than the stalled socket and the server's write buffer hold


async def test_a_client_that_stops_reading_is_ended_and_the_others_get_every_event(
    nats_url: str, database_url: str
) -> None:
    """One feed for every stream: a client that does not read (its socket full, the server's
    write waiting) falls `SSE_CLIENT_BUFFER` events behind and is ended, while a reading client
    gets every event in order; the stalled one, once it reads, gets what it was owed, then the end."""
    settings = system_settings(nats_url, database_url).model_copy(
        update={"sse_client_buffer": 10, "command_rate_per_minute": 100_000, "command_burst": 1000}
    )
    runner = running(settings)
    async with runner as client:
        system = System(client, settings)
        feed = runner.app.state.gateway.feed
        async with served(runner.app, send_buffer=4096) as base, httpx.AsyncClient(base_url=base, timeout=None) as http:
            stalled = socket.socket()
            try:
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
                stalled.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
                request = f"GET /api/events?after=0&api_key={secret('vic')} HTTP/1.1\r\nHost: x\r\n\r\n"
                stalled.sendall(request.encode())
                async with http.stream("GET", f"/api/events?api_key={secret('vic')}&after=0") as stream:
                    assert await eventually(lambda: len(feed.subscribers) == 2)
                    reader = asyncio.create_task(read_events(stream, EVENTS, timeout=120))
                    for i in range(EVENTS // 5):
                        await system.command(f"deploy llama-3.1 8B for unread-{i}", env="staging")
                    got = await reader
                assert [e["id"] for e in got] == list(range(1, EVENTS + 1))  # every event, in order
                # more events find the stalled one `sse_client_buffer` or more behind once its
                # socket and the server's buffers are full; how many events fill them depends on
                # the kernel (300 and 5 more have been just short of it), so commands go on until
                for i in range(40):
                    await system.command(f"deploy llama-3.1 8B for one-more-{i}", env="staging")
                    if await eventually(lambda: not feed.subscribers, timeout=2):
                        break
                # both ended: the stalled one fell behind, the reader left
                assert await eventually(lambda: not feed.subscribers)
                stalled.settimeout(30)
                received = b""
                while chunk := await asyncio.to_thread(stalled.recv, 65536):
                    received += chunk  # what it holds, then the server ends the response
            finally:
                stalled.close()
    assert received.endswith(b"0\r\n\r\n")  # the chunked response's end: ended, not cut
    assert b"id: 1\n" in received


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
