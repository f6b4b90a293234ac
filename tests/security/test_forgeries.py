"""Events are signed: a consumer acts only on an event signed by the service that owns its type.

The attacker here has publish rights on the subjects (a misconfigured server, a stolen admin
login) but no service's key for that type: the event is unsigned, signed by the wrong service, or
altered after its owner signed it. Every consumer refuses it and records `message.rejected` with
the reason and the actor it claimed; nobody acts on it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from shared.events import (
    ApprovalDecided,
    ApprovalDecidedData,
    DeploymentAction,
    DeploymentActionData,
    DeploymentRequested,
    DeploymentRequestedData,
    Event,
)
from shared.models import Action, Env, SageMakerDeploymentConfig
from tests.infra import connect, signed
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def rejections(database_url: str, plan_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload FROM audit_events WHERE type = 'message.rejected' AND plan_id = %s ORDER BY seq", (plan_id,)
        ).fetchall()
    return [r[0]["data"] for r in rows]


def types(database_url: str, plan_id: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT type FROM audit_events WHERE plan_id = %s", (plan_id,)).fetchall()]


async def forge(system: System, event: Event, how: str) -> None:
    """Publish `event` onto the stream as the attacker would: `how` is unsigned, wrong-signer or altered."""
    body, headers = event.canonical_json().encode(), {"Nats-Msg-Id": str(event.id)}
    if how == "wrong-signer":
        headers |= signed(event, "planner")["headers"]
    elif how == "altered":
        headers |= signed(event, "guardian" if event.type == "deployment.requested" else "gateway")["headers"]
        body = body.replace(b'"instance_count":1', b'"instance_count":4').replace(
            b'"decision":"rejected"', b'"decision":"approved"'
        )
        body = body.replace(b'"action":"pause"', b'"action":"delete"')
    nc = await connect(system.settings.nats_url, "admin")
    try:
        await nc.jetstream().publish(event.subject, body, headers=headers)
    finally:
        await nc.close()


async def recorded_by(database_url: str, plan_id: str, services: set[str], count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        found = rejections(database_url, plan_id)
        if len(found) >= count and {r["service"] for r in found} >= services:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"rejections never recorded by {services}: {rejections(database_url, plan_id)}")


HOW = ["unsigned", "wrong-signer", "altered"]


@pytest.mark.parametrize("how", HOW)
async def test_a_forged_deployment_request_deploys_nothing(system: System, database_url: str, how: str) -> None:
    plan_id = f"forged-{uuid.uuid4().hex[:8]}"
    config = SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name="forged-prod",
        instance_type="ml.p5.48xlarge",
        instance_count=1,
        budget_usd_per_hour=10_000,
    )
    event = DeploymentRequested(
        plan_id=plan_id,
        actor="guardian",
        data=DeploymentRequestedData(env=Env.PROD, config=config, estimated_usd_per_hour=450.0),
    )
    await forge(system, event, how)
    found = await recorded_by(database_url, plan_id, {"auditor", "executor"}, 2)
    assert all(r["claimed_actor"] == "guardian" for r in found)
    assert all(r["body_base64"] and r["error"] for r in found)
    assert "deployment.requested" not in types(database_url, plan_id)
    assert "deployment.status" not in types(database_url, plan_id)


@pytest.mark.parametrize("how", HOW)
async def test_a_forged_approval_leaves_the_plan_waiting(system: System, database_url: str, how: str) -> None:
    answer = await system.command("deploy llama-3.1 8B for forged-approval", env="prod", user="alice")
    plan_id = answer["plan_id"]
    await system.wait_status(plan_id, "pending_approval")
    decision = "rejected" if how == "altered" else "approved"  # altered: a signed rejection turned into approval
    event = ApprovalDecided(plan_id=plan_id, actor="bob", data=ApprovalDecidedData(decision=decision, approver="bob"))
    await forge(system, event, how)
    found = await recorded_by(database_url, plan_id, {"auditor", "guardian"}, 2)
    assert all(r["claimed_actor"] == "bob" for r in found)
    assert (await system.plan(plan_id))["status"] == "pending_approval"
    assert "deployment.requested" not in types(database_url, plan_id)


@pytest.mark.parametrize("how", HOW)
async def test_a_forged_delete_leaves_the_endpoint_running(system: System, database_url: str, how: str) -> None:
    answer = await system.command("deploy llama-3.1 8B for forged-delete", env="staging")
    plan_id = answer["plan_id"]
    await system.wait_status(plan_id, "deployed")
    action = Action.PAUSE if how == "altered" else Action.DELETE  # altered: a signed pause turned into delete
    event = DeploymentAction(
        plan_id=plan_id, actor="alice", data=DeploymentActionData(action=action, requested_by="alice")
    )
    await forge(system, event, how)
    found = await recorded_by(database_url, plan_id, {"auditor", "executor", "guardian"}, 3)
    assert {r["claimed_actor"] for r in found} == {"alice"}
    assert (await system.plan(plan_id))["status"] == "deployed"


async def test_the_guardian_may_expire_a_request_but_not_approve_it(system: System, database_url: str) -> None:
    """Owning a type is not enough: the guardian's key may sign approval.decided only for expiry."""
    answer = await system.command("deploy llama-3.1 8B for guardian-approves", env="prod", user="alice")
    plan_id = answer["plan_id"]
    await system.wait_status(plan_id, "pending_approval")
    event = ApprovalDecided(
        plan_id=plan_id, actor="guardian", data=ApprovalDecidedData(decision="approved", approver="guardian")
    )
    sent = signed(event, "guardian")
    nc = await connect(system.settings.nats_url, "guardian")
    try:
        await nc.jetstream().publish(event.subject, sent["message"], headers=sent["headers"])
    finally:
        await nc.close()
    found = await recorded_by(database_url, plan_id, {"auditor", "guardian"}, 2)
    assert all("decides only expiry" in r["error"] for r in found)
    assert (await system.plan(plan_id))["status"] == "pending_approval"
