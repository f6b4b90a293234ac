"""Two replicas each of the planner, guardian and executor share the work and repeat no effect."""

from __future__ import annotations

import asyncio
from collections import Counter

import psycopg
import pytest
from faststream.nats import NatsBroker

from services.guardian.approvals import EndpointOwner
from shared.broker import connect_options
from shared.kv import KvStore
from shared.settings import Settings
from tests.infra import service_app
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration


async def test_two_of_each_side_by_side_repeat_no_effect(nats_url: str, database_url: str) -> None:
    settings = system_settings(nats_url, database_url)
    async with running(settings) as client:
        # the second replica of each
        extra = [service_app(name, settings) for name in ("planner", "guardian", "executor")]
        for app in extra:
            await app.__aenter__()
        try:
            system = System(client, settings)
            answers = await asyncio.gather(
                *(system.command(f"deploy llama-3.1 8B for replica-{i}", env="staging") for i in range(30))
            )
            for answer in answers:
                await system.wait_status(answer["plan_id"], "deployed")
            await system.settled()
        finally:
            for app in extra:
                await app.__aexit__(None, None, None)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT plan_id, type, payload->'data'->>'status' FROM audit_events WHERE plan_id = ANY(%s)",
            ([a["plan_id"] for a in answers],),
        ).fetchall()
    per_plan = Counter((plan_id, kind, status) for plan_id, kind, status in rows)
    for answer in answers:
        p = answer["plan_id"]
        assert per_plan[(p, "plan.proposed", None)] == 1
        assert per_plan[(p, "deployment.requested", None)] == 1
        assert per_plan[(p, "deployment.status", "deployed")] == 1


async def test_one_app_deployed_at_once_through_two_guardians_gets_one_endpoint(
    nats_url: str, database_url: str
) -> None:
    """The same app deployed eight times at once, the plans shared by two guardian replicas (each
    with its own in-process lock): the endpoint is claimed by one plan; every other is refused
    naming that plan, never a second deployment of the same endpoint. (Whether two replicas'
    handlers ever overlap here is up to the scheduler; the claim's atomicity itself is the next
    test's.)"""
    settings = system_settings(nats_url, database_url)
    async with running(settings) as client:
        second = service_app("guardian", settings)
        await second.__aenter__()
        try:
            system = System(client, settings)
            answers = await asyncio.gather(
                *(system.command("deploy llama-3.1 8B for one-bot", env="staging") for _ in range(8))
            )
            refused = [a for a in answers if a["status"] == "validation_failed"]
            passed = [a for a in answers if a["status"] != "validation_failed"]
            assert len(passed) == 1, answers
            owner = passed[0]["plan_id"]
            await system.wait_status(owner, "deployed")
            for answer in refused:
                assert any(f"already belongs to plan {owner}" in e for e in answer["validation_errors"]), answer
            await system.settled()
        finally:
            await second.__aexit__(None, None, None)
    with psycopg.connect(database_url) as conn:
        requested = conn.execute(
            "SELECT count(*) FROM audit_events WHERE type = 'deployment.requested' AND plan_id = ANY(%s)",
            ([a["plan_id"] for a in answers],),
        ).fetchone()
    assert requested == (1,)


async def test_a_claim_writes_only_a_key_that_holds_nothing(nats_url: str) -> None:
    """The guardian claims an endpoint with one conditional write: refused, and nothing changed,
    while another plan holds it; granted for a key never written or one released (deleted)."""
    broker = NatsBroker(nats_url, **connect_options(Settings(nats_url=nats_url), "guardian"))
    await broker.connect()
    try:
        owners = KvStore(broker, "guardian-endpoints", EndpointOwner)
        first, second = (EndpointOwner(endpoint="claim-bot", plan_id=p) for p in ("plan-a", "plan-b"))
        assert await owners.claim("claim-bot", first)
        results = await asyncio.gather(*(owners.claim("claim-bot", second) for _ in range(5)))
        assert results == [False] * 5 and await owners.get("claim-bot") == first
        await owners.delete("claim-bot")
        assert await owners.claim("claim-bot", second) and await owners.get("claim-bot") == second
        assert not await owners.claim("claim-bot", first)
    finally:
        await broker.stop()
