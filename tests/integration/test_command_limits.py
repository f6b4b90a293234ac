"""Per-key rate limit and Idempotency-Key on POST /api/agent/command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration
DEPLOY = {"command": "deploy llama-3.1 8B for retry-bot", "env": "staging"}


@pytest.fixture
async def limited(nats_url: str, database_url: str) -> AsyncIterator[System]:
    settings = system_settings(nats_url, database_url, command_rate_per_minute=60, command_burst=2)
    async with running(settings) as client:
        yield System(client, settings)


def intents(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_events WHERE type = 'intent.received'").fetchone()
    return int(row[0]) if row else 0


async def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(limited: System) -> None:
    for _ in range(2):
        assert (await limited.client.post("/api/agent/command", json=DEPLOY)).status_code == 200
    refused = await limited.client.post("/api/agent/command", json=DEPLOY)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1 and "retry in" in refused.json()["detail"]
    other = await limited.client.post("/api/agent/command", json=DEPLOY, headers=limited.auth("erin"))
    assert other.status_code == 200


async def test_a_retried_command_with_the_same_key_returns_the_first_plan(system: System, database_url: str) -> None:
    key = {"Idempotency-Key": "9f1d6c1e-retry-1"}
    first = await system.client.post("/api/agent/command", json=DEPLOY, headers=key)
    second = await system.client.post("/api/agent/command", json=DEPLOY, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json()["plan_id"] == first.json()["plan_id"]
    assert second.json()["command_id"] == first.json()["command_id"]
    assert second.headers["idempotent-replayed"] == "true"
    await system.settled()
    assert intents(database_url) == 1

    other_body = await system.client.post(
        "/api/agent/command", json={**DEPLOY, "command": "deploy mistral 7b for retry-bot"}, headers=key
    )
    assert other_body.status_code == 422 and "different command" in other_body.json()["detail"]
    # the key is the user's own: the same key from another user is a new command
    erin = await system.client.post("/api/agent/command", json=DEPLOY, headers={**key, **system.auth("erin")})
    assert erin.status_code == 200 and erin.json()["plan_id"] != first.json()["plan_id"]


async def test_concurrent_retries_make_one_plan(system: System, database_url: str) -> None:
    key = {"Idempotency-Key": "concurrent-1"}
    answers = await asyncio.gather(
        *(system.client.post("/api/agent/command", json=DEPLOY, headers=key) for _ in range(5))
    )
    assert len({a.json()["plan_id"] for a in answers}) == 1
    await system.settled()
    assert intents(database_url) == 1
