"""Updates and rollbacks of a live endpoint through the whole system in dry-run: gateway, planner,
guardian, executor and auditor on a real broker and database. Statuses, the plan's history, the
before/after with the cost delta, approvals in prod, and the 409s of a change that cannot be."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from services.auditor.verify import verify
from tests.infra import found
from tests.integration.conftest import System

pytestmark = pytest.mark.integration
QWEN, LLAMA, MISTRAL = (
    "Qwen/Qwen2.5-7B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
)


async def wait_for(
    system: System, plan_id: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 15.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        plan = await system.plan(plan_id)
        return plan if condition(plan) else None

    return await found(check, timeout, f"the condition on plan {plan_id}")  # type: ignore[no-any-return]


def history(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["operation"], r["config"]["model_name"], r["outcome"]) for r in plan["details"]["history"]]


async def test_update_then_roll_back_in_staging_keeps_every_configuration_in_the_history(
    system: System, database_url: str
) -> None:
    plan_id = (await system.command("deploy qwen 2.5 7b for upd-bot", env="staging"))["plan_id"]
    first = await system.wait_status(plan_id, "deployed")
    nothing = await system.client.post(f"/api/deployments/{plan_id}/rollback")
    assert nothing.status_code == 409 and "no other configuration" in nothing.json()["detail"]

    answer = await system.command("update upd-bot to mistral 7b with a 20% canary", env="staging")
    assert answer["action"] == "update" and answer["plan_id"] == plan_id, answer
    updated = await wait_for(system, plan_id, lambda p: len(p["details"]["history"]) == 2)
    assert updated["status"] == "deployed" and updated["artifact"]["model_name"] == MISTRAL
    change = updated["details"]["change"]
    assert change["operation"] == "update" and change["before"]["model_name"] == QWEN
    assert change["strategy"] == {"shift": "canary", "percent": 20, "wait_seconds": 120}
    assert change["cost_delta_usd_per_hour"] == pytest.approx(
        change["usd_per_hour_after"] - change["usd_per_hour_before"]
    )
    calls = [c["operation"] for c in updated["details"]["sagemaker_calls"][-4:]]
    assert calls == ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint", "InvokeEndpoint"]
    update = updated["details"]["sagemaker_calls"][-2]["params"]
    assert update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert update["EndpointConfigName"] != first["details"]["sagemaker_calls"][1]["params"]["EndpointConfigName"]

    same = await system.client.post(f"/api/deployments/{plan_id}/update", json={"model_id": MISTRAL})
    assert same.status_code == 409 and "changes nothing" in same.json()["detail"]

    back = await system.command("roll back upd-bot in staging")
    assert back["action"] == "rollback", back
    rolled = await wait_for(system, plan_id, lambda p: len(p["details"]["history"]) == 3)
    assert rolled["status"] == "deployed" and rolled["artifact"]["model_name"] == QWEN
    assert history(rolled) == [
        ("deploy", QWEN, "deployed"),
        ("update", MISTRAL, "deployed"),
        ("rollback", QWEN, "deployed"),
    ]
    await system.settled()
    with psycopg.connect(database_url) as conn:
        statuses = [
            r[0]
            for r in conn.execute(
                "SELECT payload->'data'->>'status' FROM audit_events WHERE plan_id = %s AND type = 'deployment.status' "
                "ORDER BY seq",
                (plan_id,),
            )
        ]
    assert statuses == ["deploying", "deployed", "updating", "deployed", "updating", "deployed"]
    # the guardian learnt how the update and the rollback ended (the rollback above went back to
    # what the update replaced) from the two statuses repeated for it; the first deployment's
    # statuses change nothing it keeps and were never sent its way
    with psycopg.connect(database_url) as conn:
        changed = conn.execute(
            "SELECT payload->'data'->>'status', payload->'data'->'config'->>'model_name' FROM audit_events "
            "WHERE plan_id = %s AND type = 'deployment.changed' ORDER BY seq",
            (plan_id,),
        ).fetchall()
    assert changed == [("deployed", MISTRAL), ("deployed", QWEN)]
    verdict = await verify(database_url)
    assert verdict.ok, verdict.describe()


async def test_an_update_in_prod_waits_for_an_approver_bound_to_the_new_configuration(system: System) -> None:
    answer = await system.command("deploy qwen 2.5 7b for prod-upd", env="prod", user="alice")
    plan_id = answer["plan_id"]
    waiting = await system.wait_status(plan_id, "pending_approval")
    request = {"plan_hash": waiting["details"]["waiting"]["plan_hash"]}
    approved = await system.client.post(
        "/approve",
        json={"plan_id": plan_id, "decision": "approved", "plan_hash": request["plan_hash"]},
        headers=system.auth("bob"),
    )
    assert approved.status_code == 200, approved.text
    await system.wait_status(plan_id, "deployed")

    response = await system.client.post(
        f"/api/deployments/{plan_id}/update",
        json={"model_id": MISTRAL, "strategy": {"shift": "linear", "percent": 25, "wait_seconds": 60}},
    )
    assert response.status_code == 200, response.text
    waiting = await wait_for(system, plan_id, lambda p: p["details"]["pending_change"] is not None)
    pending = waiting["details"]["pending_change"]
    assert pending["operation"] == "update" and pending["previous"]["model_name"] == QWEN
    assert pending["strategy"] == {"shift": "linear", "percent": 25, "wait_seconds": 60}
    assert waiting["status"] == "deployed" and waiting["artifact"]["model_name"] == QWEN  # nothing changed yet
    busy = await system.client.post(f"/api/deployments/{plan_id}/update", json={"instance_count": 3})
    assert busy.status_code == 409 and "waiting for approval" in busy.json()["detail"]

    own = await system.client.post(
        "/approve",
        json={"plan_id": plan_id, "decision": "approved", "plan_hash": pending["plan_hash"]},
        headers=system.auth("alice"),
    )
    assert own.status_code == 403
    stale = await system.client.post(
        "/approve",
        json={"plan_id": plan_id, "decision": "approved", "plan_hash": request["plan_hash"]},
        headers=system.auth("bob"),
    )
    assert stale.status_code == 409  # the first approval's hash does not approve this change
    ok = await system.client.post(
        "/approve",
        json={"plan_id": plan_id, "decision": "approved", "plan_hash": pending["plan_hash"]},
        headers=system.auth("bob"),
    )
    assert ok.status_code == 200, ok.text
    done = await wait_for(system, plan_id, lambda p: len(p["details"]["history"]) == 2)
    assert done["status"] == "deployed" and done["artifact"]["model_name"] == MISTRAL
    assert history(done)[-1] == ("update", MISTRAL, "deployed")


async def test_changes_that_cannot_be_made_are_refused_with_the_reason(system: System) -> None:
    plan_id = (await system.command("deploy qwen 2.5 7b for refuse-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    for body, status, says in [
        ({}, 422, "say what to change"),
        ({"model_id": "gpt-7-turbo"}, 422, "unknown model"),
        ({"model_id": QWEN}, 409, "changes nothing"),
        ({"instance_type": "g5"}, 422, "instance type"),
        ({"instance_count": 2, "strategy": {"shift": "canary", "percent": 90}}, 422, "less than or equal to 50"),
    ]:
        response = await system.client.post(f"/api/deployments/{plan_id}/update", json=body)
        assert response.status_code == status and says in response.text, (body, response.text)
    worded = await system.client.post("/api/agent/command", json={"command": "update refuse-bot to gpt-7 turbo"})
    assert worded.status_code == 422 and "unknown model" in worded.json()["detail"]

    assert (await system.client.post(f"/api/deployments/{plan_id}/pause")).status_code == 200
    await system.wait_status(plan_id, "paused")
    paused = await system.client.post(f"/api/deployments/{plan_id}/update", json={"model_id": MISTRAL})
    assert paused.status_code == 409 and "paused" in paused.json()["detail"]
    missing = await system.client.post("/api/deployments/no-such-plan/rollback")
    assert missing.status_code == 404


async def test_deploying_an_app_that_is_live_points_to_the_update(system: System) -> None:
    first = await system.command("deploy qwen 2.5 7b for taken-bot", env="staging")
    await system.wait_status(first["plan_id"], "deployed")
    again = await system.command("deploy mistral 7b for taken-bot", env="staging")
    assert again["status"] == "validation_failed"
    assert f"POST /api/deployments/{first['plan_id']}/update" in " ".join(again["validation_errors"])
