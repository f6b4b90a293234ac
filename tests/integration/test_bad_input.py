"""Bad input gets a clear 4xx and publishes nothing."""

from __future__ import annotations

import pytest

from tests.infra import connect
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def stream_messages(url: str) -> int:
    nc = await connect(url)
    try:
        return int((await nc.jetstream().stream_info("AGENTOPS")).state.messages)
    finally:
        await nc.close()


BAD_BODIES = [
    (b"{not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (b"{}", "command is required"),
    (b'{"command": ""}', "command"),
    (b'{"command": "   "}', "command"),
    (b'{"command": "deploy llama 3.1 8b for x", "env": "moon"}', "env"),
    (b'{"command": "deploy llama 3.1 8b for x", "colour": "red"}', "colour is not a known field"),
    (b'{"command": 42}', "command"),
    (b'{"command": "deploy llama 3.1 8b for x", "user_id": "a b; drop table"}', "user_id"),
]


@pytest.mark.parametrize(("body", "says"), BAD_BODIES)
async def test_malformed_command_is_refused_with_a_message_and_nothing_is_published(
    system: System, body: bytes, says: str
) -> None:
    before = await stream_messages(system.settings.nats_url)

    response = await system.client.post(
        "/api/agent/command", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert await stream_messages(system.settings.nats_url) == before


async def test_over_long_command_is_refused(system: System) -> None:
    before = await stream_messages(system.settings.nats_url)
    response = await system.client.post("/api/agent/command", json={"command": "deploy " + "x" * 1200})
    assert response.status_code == 422
    assert "limit is 1000" in response.json()["detail"]
    assert await stream_messages(system.settings.nats_url) == before


async def test_body_over_the_size_limit_is_413(system: System) -> None:
    huge = b'{"command": "' + b"a" * 200_000 + b'"}'
    response = await system.client.post(
        "/api/agent/command", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


async def test_bad_approval_bodies_are_422(system: System) -> None:
    for body in (
        {"plan_id": "x", "decision": "maybe", "approver": "bob"},
        {"plan_id": "../etc", "decision": "approved", "approver": "bob"},
        {"decision": "approved"},
    ):
        response = await system.client.post("/approve", json=body, headers=system.auth("bob"))
        assert response.status_code == 422, body
