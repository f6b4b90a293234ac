"""Two replicas each of the planner, guardian and executor share the work and repeat no effect."""

from __future__ import annotations

import asyncio
from collections import Counter

import psycopg
import pytest

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
