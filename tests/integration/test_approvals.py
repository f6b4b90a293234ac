"""Approvals mean something: the right person, once, in time, for the plan they saw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from services.runtime.bootstrap import messaging
from shared.events import ApprovalDecided, ApprovalDecidedData, PlanProposed, parse_event
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration


def audit(database_url: str, plan_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT payload FROM audit_events WHERE plan_id = %s ORDER BY seq", (plan_id,)).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
async def strict(nats_url: str, database_url: str) -> AsyncIterator[System]:
    """Every plan over $1/h needs two approvers; requests expire after 1.5 s and are swept every 0.2 s."""
    settings = system_settings(
        nats_url,
        database_url,
        two_approvers_over_usd_per_hour=1.0,
        approval_ttl_hours=1.5 / 3600,
        approval_sweep_seconds=0.2,
    )
    async with running(settings) as client:
        yield System(client, settings)


async def pending_prod(system: System, app: str = "chatbot-x") -> str:
    answer = await system.command(f"deploy llama-3.1 8B for {app}", env="prod", user="alice")
    assert answer["requires_approval"] is True
    await system.wait_status(answer["plan_id"], "pending_approval")
    return str(answer["plan_id"])


async def test_self_approval_is_refused_and_the_reason_given(system: System) -> None:
    answer = await system.command("deploy llama-3.1 8B for self-bot", env="prod", user="dave")
    await system.wait_status(answer["plan_id"], "pending_approval")
    refused = await system.client.post(f"/approvals/{answer['plan_id']}/approve", headers=system.auth("dave"))
    assert refused.status_code == 403 and "own plan" in refused.json()["detail"]


async def test_approve_and_reject_routes_per_plan(system: System, database_url: str) -> None:
    plan_id = await pending_prod(system)
    listed = (await system.client.get("/approvals")).json()
    assert listed[0]["plan_hash"] and listed[0]["approvals_required"] == 1 and listed[0]["approvers"] == []
    ok = await system.client.post(
        f"/approvals/{plan_id}/approve", json={"reason": "capacity ok"}, headers=system.auth("bob")
    )
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    await system.wait_status(plan_id, "deployed")
    decided = [e for e in audit(database_url, plan_id) if e["type"] == "approval.decided"]
    assert decided[0]["actor"] == "bob" and decided[0]["data"]["reason"] == "capacity ok"

    other = await pending_prod(system, "other-bot")
    no = await system.client.post(
        f"/approvals/{other}/reject", json={"reason": "not now"}, headers=system.auth("carol")
    )
    assert no.status_code == 200
    await system.wait_status(other, "rejected")
    late = await system.client.post(f"/approvals/{other}/approve", headers=system.auth("bob"))
    assert late.status_code == 409 and "already rejected" in late.json()["detail"]


async def test_two_distinct_approvers_above_the_threshold(strict: System, database_url: str) -> None:
    plan_id = await pending_prod(strict)
    assert (await strict.client.get("/approvals")).json()[0]["approvals_required"] == 2

    first = await strict.client.post(f"/approvals/{plan_id}/approve", headers=strict.auth("bob"))
    assert first.status_code == 200
    await strict.settled()
    assert (await strict.plan(plan_id))["status"] == "pending_approval"  # one is not enough
    again = await strict.client.post(f"/approvals/{plan_id}/approve", headers=strict.auth("bob"))
    assert again.status_code == 409 and "already approved" in again.json()["detail"]

    second = await strict.client.post(f"/approvals/{plan_id}/approve", headers=strict.auth("carol"))
    assert second.status_code == 200
    await strict.wait_status(plan_id, "deployed")
    types = [e["type"] for e in audit(database_url, plan_id)]
    assert types.count("deployment.requested") == 1


async def test_the_same_approver_twice_on_the_bus_counts_once(strict: System, database_url: str) -> None:
    plan_id = await pending_prod(strict)
    plan_hash = (await strict.client.get("/approvals")).json()[0]["plan_hash"]
    # as the gateway itself would publish them (its identity, its signature)
    bus = messaging(strict.settings, "gateway")
    publish, broker = bus.publisher(["approval.decided"]), bus.broker
    async with broker:
        await broker.start()
        for _ in range(2):  # two distinct events from bob, as a client bypassing the gateway might send
            data = ApprovalDecidedData(decision="approved", approver="bob", plan_hash=plan_hash)
            await publish(ApprovalDecided(plan_id=plan_id, actor="bob", data=data))
    await strict.settled()
    assert "deployment.requested" not in [e["type"] for e in audit(database_url, plan_id)]
    assert (await strict.plan(plan_id))["status"] == "pending_approval"


async def test_an_expired_request_cannot_be_approved(strict: System, database_url: str) -> None:
    plan_id = await pending_prod(strict)
    expires = (await strict.client.get("/approvals")).json()[0]["expires_at"]
    while datetime.now(UTC) <= datetime.fromisoformat(expires):  # until the request's own expiry
        await asyncio.sleep(0.05)
    late = await strict.client.post(f"/approvals/{plan_id}/approve", headers=strict.auth("bob"))
    assert late.status_code == 409 and "expired" in late.json()["detail"]
    plan = await strict.wait_status(plan_id, "rejected", timeout=5)  # the sweep recorded the expiry
    assert "expired" in plan["validation_errors"][0]
    with psycopg.connect(database_url) as conn:
        (status,) = conn.execute("SELECT status FROM approvals WHERE plan_id = %s", (plan_id,)).fetchone() or ("",)
    assert status == "expired"
    expired = [e for e in audit(database_url, plan_id) if e["type"] == "approval.decided"]
    assert [(e["actor"], e["data"]["decision"]) for e in expired] == [("guardian", "expired")]


async def test_an_approval_for_an_older_version_of_the_plan_deploys_nothing(system: System, database_url: str) -> None:
    plan_id = await pending_prod(system)
    seen_hash = (await system.client.get("/approvals")).json()[0]["plan_hash"]
    proposed = next(e for e in audit(database_url, plan_id) if e["type"] == "plan.proposed")

    # The plan changes after bob looked at it: a new proposal for the same plan with more instances.
    old = parse_event(__import__("json").dumps(proposed))
    assert isinstance(old, PlanProposed)
    bigger = old.data.config.model_copy(update={"instance_count": 3})
    changed = PlanProposed(plan_id=plan_id, actor="planner", data=old.data.model_copy(update={"config": bigger}))
    bus = messaging(system.settings, "planner")
    async with bus.broker:
        await bus.broker.start()
        await bus.publisher(["plan.proposed"])(changed)
    for _ in range(50):
        listed = (await system.client.get("/approvals")).json()
        if listed and listed[0]["plan_hash"] != seen_hash:
            break
        await asyncio.sleep(0.1)
    assert listed[0]["artifact"]["instance_count"] == 3

    stale = await system.client.post(
        f"/approvals/{plan_id}/approve", json={"plan_hash": seen_hash}, headers=system.auth("bob")
    )
    assert stale.status_code == 409 and "changed since you reviewed it" in stale.json()["detail"]
    await system.settled()
    assert "deployment.requested" not in [e["type"] for e in audit(database_url, plan_id)]
