"""Spending changes need the same approval as spending: a scale-up or restart is checked like a
new plan, and in prod or above the cost thresholds waits for one or two approvers bound to the
new configuration's hash. (A $20/h prod plan scaled by its requester alone to $40.72/h was the bug.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def priced(nats_url: str, database_url: str) -> AsyncIterator[System]:
    """ml.g5.2xlarge costs $1.515/h: 1 instance needs nobody, 2 ($3.03) one approver, 4 ($6.06) two."""
    settings = system_settings(
        nats_url,
        database_url,
        approval_cost_threshold_usd_per_hour=3.0,
        two_approvers_over_usd_per_hour=6.0,
    )
    async with running(settings) as client:
        yield System(client, settings)


async def live(system: System, app: str, env: str = "staging") -> str:
    answer = await system.command(f"deploy llama-3.1 8B for {app} on ml.g5.2xlarge with budget $15/hour", env=env)
    plan_id = str(answer["plan_id"])
    if env == "prod":
        await system.wait_status(plan_id, "pending_approval")
        ok = await system.client.post(f"/approvals/{plan_id}/approve", headers=system.auth("bob"))
        assert ok.status_code == 200, ok.text
    await system.wait_status(plan_id, "deployed")
    return plan_id


async def request_for(system: System, plan_id: str, operation: str) -> dict[str, Any]:
    for _ in range(200):
        listed = (await system.client.get("/approvals")).json()
        found = [a for a in listed if a["plan_id"] == plan_id and a.get("operation") == operation]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {operation} approval request for {plan_id}")


async def count_becomes(system: System, plan_id: str, count: int) -> None:
    for _ in range(200):
        plan = await system.plan(plan_id)
        if plan["artifact"]["instance_count"] == count and plan["status"] == "deployed":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{plan_id} never ran {count} instances: {plan['artifact']}")


async def scale(system: System, plan_id: str, count: int, user: str = "alice") -> None:
    response = await system.client.post(
        f"/api/deployments/{plan_id}/scale", json={"instance_count": count}, headers=system.auth(user)
    )
    assert response.status_code == 200, response.text


async def test_a_scale_under_the_threshold_goes_through_alone(priced: System) -> None:
    plan_id = await live(priced, "scale-small")
    await scale(priced, plan_id, 1)  # the same cost: nothing to approve
    await count_becomes(priced, plan_id, 1)


async def test_a_scale_over_the_first_threshold_waits_for_one_approver(priced: System) -> None:
    plan_id = await live(priced, "scale-one")
    await scale(priced, plan_id, 2)
    request = await request_for(priced, plan_id, "scale")
    assert request["approvals_required"] == 1 and request["artifact"]["instance_count"] == 2
    assert (await priced.plan(plan_id))["artifact"]["instance_count"] == 1  # still as it was
    own = await priced.client.post(f"/approvals/{plan_id}/approve", headers=priced.auth("alice"))
    assert own.status_code == 403  # the requester of the change cannot approve it
    ok = await priced.client.post(
        f"/approvals/{plan_id}/approve", json={"plan_hash": request["plan_hash"]}, headers=priced.auth("bob")
    )
    assert ok.status_code == 200, ok.text
    await count_becomes(priced, plan_id, 2)


async def test_a_scale_over_the_second_threshold_waits_for_two_distinct_approvers(priced: System) -> None:
    plan_id = await live(priced, "scale-two")
    await scale(priced, plan_id, 4)
    request = await request_for(priced, plan_id, "scale")
    assert request["approvals_required"] == 2
    first = await priced.client.post(f"/approvals/{plan_id}/approve", headers=priced.auth("bob"))
    assert first.status_code == 200
    again = await priced.client.post(f"/approvals/{plan_id}/approve", headers=priced.auth("bob"))
    assert again.status_code == 409 and "already approved" in again.json()["detail"]
    assert (await priced.plan(plan_id))["artifact"]["instance_count"] == 1
    second = await priced.client.post(f"/approvals/{plan_id}/approve", headers=priced.auth("carol"))
    assert second.status_code == 200, second.text
    await count_becomes(priced, plan_id, 4)


async def test_a_restart_in_prod_waits_for_an_approver(priced: System) -> None:
    plan_id = await live(priced, "restart-prod", env="prod")
    paused = await priced.client.post(f"/api/deployments/{plan_id}/pause")
    assert paused.status_code == 200
    await priced.wait_status(plan_id, "paused")
    restarted = await priced.client.post(f"/api/deployments/{plan_id}/restart")
    assert restarted.status_code == 200
    request = await request_for(priced, plan_id, "restart")
    assert request["approvals_required"] == 1
    assert (await priced.plan(plan_id))["status"] == "paused"  # nothing runs until someone approves
    rejected = await priced.client.post(
        f"/approvals/{plan_id}/reject", json={"reason": "not tonight"}, headers=priced.auth("carol")
    )
    assert rejected.status_code == 200  # a rejected restart leaves it paused; a second request asks again
    again = await priced.client.post(f"/api/deployments/{plan_id}/restart")
    assert again.status_code == 200
    for _ in range(200):
        listed = [a for a in (await priced.client.get("/approvals")).json() if a["plan_id"] == plan_id]
        if listed and listed[0]["approvers"] == [] and listed[0]["plan_hash"] != request["plan_hash"]:
            break
        await asyncio.sleep(0.05)
    ok = await priced.client.post(f"/approvals/{plan_id}/approve", headers=priced.auth("bob"))
    assert ok.status_code == 200, ok.text
    await priced.wait_status(plan_id, "deployed")


async def test_the_action_routes_are_rate_limited_per_key(nats_url: str, database_url: str) -> None:
    settings = system_settings(nats_url, database_url, command_rate_per_minute=60, command_burst=2)
    async with running(settings) as client:
        system = System(client, settings)
        answers = [await client.post(f"/api/deployments/nope-{i}/pause") for i in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        assert answers[2].headers["Retry-After"]
        other = await client.post("/approvals/nope/approve", headers=system.auth("bob"))
        assert other.status_code == 404  # another key has its own bucket
