"""The seed's flows end to end: HTTP gateway -> planner -> guardian -> executor -> auditor -> read model."""

from __future__ import annotations

import psycopg
import pytest

from services.auditor.verify import verify
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def audit_types(database_url: str, plan_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT type FROM audit_events WHERE plan_id = %s ORDER BY seq", (plan_id,)).fetchall()
    return [r[0] for r in rows]


async def test_staging_command_deploys_and_every_step_is_audited_in_order(system: System, database_url: str) -> None:
    answer = await system.command("deploy llama-3.1 8B for chatbot-x with budget $20/hour", env="staging")

    assert answer["status"] == "success"
    assert answer["requires_approval"] is False
    plan = await system.wait_status(answer["plan_id"], "deployed")
    assert plan["artifact"]["model_name"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert plan["artifact"]["endpoint_name"] == "chatbot-x-staging"
    assert plan["artifact"]["budget_usd_per_hour"] == 20.0
    calls = [c["operation"] for c in plan["details"]["sagemaker_calls"]]
    assert calls == [
        "CreateModel",
        "CreateEndpointConfig",
        "PutMetricAlarm",
        "PutMetricAlarm",
        "CreateEndpoint",
        "InvokeEndpoint",  # the smoke test, described (dry-run sends nothing)
    ]
    assert plan["details"]["smoke"] == {"outcome": "described", "latency_ms": None, "detail": ""}
    # let through in dry-run, but the requester sees what a real deploy of a gated model needs
    (warning,) = plan["details"]["findings"]
    assert warning["code"] == "HF_TOKEN_MISSING" and warning["severity"] == "warning"
    assert "HF_TOKEN_SECRET_ARN" in warning["message"]
    await system.settled()  # the final status recorded before the log is read
    assert await audit_types(database_url, answer["plan_id"]) == [
        "intent.received",
        "plan.proposed",
        "deployment.requested",
        "deployment.status",
        "deployment.status",
    ]
    verdict = await verify(database_url)
    assert verdict.ok, verdict.describe()
    assert verdict.count == 5


async def test_prod_plan_waits_for_approval_and_deploys_once_approved(system: System) -> None:
    answer = await system.command("deploy llama-3.1 8B for chatbot-x", env="prod", user="alice")

    assert answer["status"] == "success" and answer["requires_approval"] is True
    plan_id = answer["plan_id"]
    await system.wait_status(plan_id, "pending_approval")
    listed = (await system.client.get("/approvals")).json()
    assert [a["plan_id"] for a in listed] == [plan_id]
    pending = (await system.client.get("/api/metrics/approvals/pending")).json()
    assert pending["count"] == 1 and [a["plan_id"] for a in pending["approvals"]] == [plan_id]

    decision = await system.client.post(
        "/approve",
        json={"plan_id": plan_id, "decision": "approved", "approver": "bob", "reason": "capacity reviewed"},
        headers=system.auth("bob"),
    )
    assert decision.status_code == 200, decision.text
    plan = await system.wait_status(plan_id, "deployed")
    assert plan["artifact"]["instance_count"] == 2  # prod runs two instances for availability
    assert (await system.client.get("/approvals")).json() == []
    active = (await system.client.get("/api/metrics/deployments/active")).json()
    assert active["count"] == 1
    assert active["deployments"][0] | {"plan_id": "-"} == {
        "plan_id": "-",
        "endpoint_name": "chatbot-x-prod",
        "status": "deployed",
        "environment": "prod",
        "instance_type": plan["artifact"]["instance_type"],
    }


async def test_prod_plan_rejected_by_approver_never_deploys(system: System, database_url: str) -> None:
    answer = await system.command("deploy mistral 7b for summarizer in production")
    plan_id = answer["plan_id"]
    await system.wait_status(plan_id, "pending_approval")

    decision = await system.client.post(
        "/approve",
        json={"plan_id": plan_id, "decision": "rejected", "approver": "bob", "reason": "not this quarter"},
        headers=system.auth("bob"),
    )
    assert decision.status_code == 200
    await system.wait_status(plan_id, "rejected")
    await system.settled()
    assert "deployment.requested" not in await audit_types(database_url, plan_id)
    again = await system.client.post(
        "/approve", json={"plan_id": plan_id, "decision": "approved", "approver": "carol"}, headers=system.auth("carol")
    )
    assert again.status_code == 409


async def test_requester_cannot_approve_their_own_prod_plan(system: System) -> None:
    # dave holds both roles: the approver role does not let him approve his own request.
    answer = await system.command("deploy llama-3.1 8B for chatbot-x in prod", user="dave")
    await system.wait_status(answer["plan_id"], "pending_approval")

    refused = await system.client.post(
        "/approve", json={"plan_id": answer["plan_id"], "decision": "approved"}, headers=system.auth("dave")
    )
    assert refused.status_code == 403
    assert "own plan" in refused.json()["detail"]
    # a deployer without the approver role is refused for the role, before anything else
    no_role = await system.client.post(
        "/approve", json={"plan_id": answer["plan_id"], "decision": "approved"}, headers=system.auth("alice")
    )
    assert no_role.status_code == 403 and "approver role" in no_role.json()["detail"]


async def test_command_that_fails_guardrails_answers_validation_failed(system: System) -> None:
    answer = await system.command("deploy llama 3.1 70b for analytics-assistant with budget $2/hour")

    assert answer["status"] == "validation_failed"
    assert any("over the budget" in e for e in answer["validation_errors"])
    plan = await system.wait_status(answer["plan_id"], "validation_failed")
    assert plan["validation_errors"] == answer["validation_errors"]


async def test_unknown_model_explains_and_suggests(system: System) -> None:
    answer = await system.command("deploy llama 9.9 8b for chatbot-x")

    assert answer["status"] == "validation_failed"
    assert "unknown model" in answer["message"]


async def test_pause_restart_delete_follow_the_allowed_transitions(system: System, database_url: str) -> None:
    plan_id = (await system.command("deploy llama-3.1 8B for lifecycle-bot"))["plan_id"]
    await system.wait_status(plan_id, "deployed")

    assert (await system.client.post(f"/api/deployments/{plan_id}/restart")).status_code == 200
    await system.wait_status(plan_id, "deployed")
    assert (await system.client.post(f"/api/deployments/{plan_id}/pause")).status_code == 200
    paused = await system.wait_status(plan_id, "paused")
    assert paused["details"]["sagemaker_calls"][-1]["operation"] == "DeleteEndpoint"
    conflict = await system.client.post(f"/api/deployments/{plan_id}/pause")
    assert conflict.status_code == 409 and "paused" in conflict.json()["detail"]

    assert (await system.client.post(f"/api/deployments/{plan_id}/restart")).status_code == 200
    restarted = await system.wait_status(plan_id, "deployed")
    assert [c["operation"] for c in restarted["details"]["sagemaker_calls"][-2:]] == [
        "CreateEndpoint",
        "InvokeEndpoint",
    ]

    assert (await system.client.delete(f"/api/deployments/{plan_id}")).status_code == 200
    await system.wait_status(plan_id, "deleted")
    listed = (await system.client.get("/api/deployments")).json()
    assert plan_id not in [p["plan_id"] for p in listed["deployments"]]
    assert (await system.client.post(f"/api/deployments/{plan_id}/pause")).status_code == 409
    assert (await system.client.delete(f"/api/deployments/{plan_id}")).status_code == 409
    await system.settled()
    assert (await audit_types(database_url, plan_id)).count("deployment.action") == 4


async def test_actions_on_unknown_plans_are_404(system: System) -> None:
    for response in (
        await system.client.post("/api/deployments/no-such-plan/pause"),
        await system.client.post("/api/deployments/no-such-plan/restart"),
        await system.client.delete("/api/deployments/no-such-plan"),
        await system.client.get("/api/deployments/no-such-plan"),
    ):
        assert response.status_code == 404
    approve = await system.client.post(
        "/approve",
        json={"plan_id": "no-such-plan", "decision": "approved", "approver": "bob"},
        headers=system.auth("bob"),
    )
    assert approve.status_code == 404


async def test_responses_keep_the_seed_shapes(system: System) -> None:
    answer = await system.command("deploy llama-3.1 8B for shapes-bot", env="staging")
    # the seed's {command_id, status, result: {plan_id, status, artifact, requires_approval, errors}}
    assert answer["command_id"] and answer["command_id"] != answer["plan_id"]
    assert answer["result"]["plan_id"] == answer["plan_id"]
    assert answer["result"]["artifact"]["endpoint_name"] == "shapes-bot-staging"
    assert answer["result"]["requires_approval"] is False and answer["result"]["errors"] == []
    await system.wait_status(answer["plan_id"], "deployed")

    listed = (await system.client.get("/api/deployments", params={"limit": 1})).json()
    assert listed["count"] == 1 and listed["deployments"][0]["plan_id"] == answer["plan_id"]
    for path in (f"/api/deployments/{answer['plan_id']}", f"/plan/{answer['plan_id']}"):
        detail = (await system.client.get(path)).json()
        assert detail["plan"]["plan_id"] == answer["plan_id"] and "approval" in detail
    cost = (await system.client.get("/api/metrics/costs/monthly")).json()
    assert cost["trend"] in ("up", "down", "stable") and set(cost["period"]) == {"start", "end"}

    failed = await system.command("deploy llama 3.1 70b for big-bot with budget $2/hour")
    assert failed["status"] == "validation_failed" and failed["error"]
    assert failed["result"]["errors"] == failed["validation_errors"] != []


async def test_seed_constraints_apply_when_the_command_does_not_say(system: System) -> None:
    response = await system.client.post(
        "/api/agent/command",
        json={
            "command": "deploy llama-3.1 8B for budget-bot",
            "env": "staging",
            "constraints": {"budget_usd_per_hour": 1.0},
        },
    )
    answer = response.json()
    assert answer["status"] == "validation_failed"  # no GPU that fits an 8B model costs under $1/h
    assert any("budget" in e for e in answer["validation_errors"])
    bad = await system.client.post(
        "/api/agent/command", json={"command": "deploy llama-3.1 8B for x", "constraints": {"instance_count": 50}}
    )
    assert bad.status_code == 422 and "instance_count" in bad.json()["detail"]


async def test_an_app_live_in_an_env_is_refused_a_second_plan_until_the_first_is_deleted(system: System) -> None:
    first = await system.command("deploy llama-3.1 8B for owned-bot", env="staging")
    await system.wait_status(first["plan_id"], "deployed")

    again = await system.command("deploy qwen 2.5 7b for owned-bot", env="staging")
    assert again["status"] == "validation_failed"
    reason = " ".join(again["validation_errors"])
    assert f"owned-bot-staging already belongs to plan {first['plan_id']} (deployed)" in reason
    assert f"DELETE /api/deployments/{first['plan_id']}" in reason
    # the same app in another env is another endpoint
    dev = await system.command("deploy qwen 2.5 7b for owned-bot", env="dev")
    await system.wait_status(dev["plan_id"], "deployed")

    assert (await system.client.delete(f"/api/deployments/{first['plan_id']}")).status_code == 200
    await system.wait_status(first["plan_id"], "deleted")
    third = await system.command("deploy qwen 2.5 7b for owned-bot", env="staging")
    await system.wait_status(third["plan_id"], "deployed")
