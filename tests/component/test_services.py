"""Each service's handlers through FastStream's in-memory TestNatsBroker: decode, decide, publish."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.nats import NatsBroker, NatsMessage

from services.executor.lifecycle import Deployed
from services.guardian.approvals import GuardedPlan
from shared.broker import stream_for
from shared.events import (
    ApprovalDecided,
    ApprovalDecidedData,
    DeploymentRequested,
    DeploymentRequestedData,
    IntentReceived,
    IntentReceivedData,
    PlanProposed,
    PlanProposedData,
    parse_event,
)
from shared.guardrails import Spend
from shared.kv import MemoryStore
from shared.models import Env, SageMakerDeploymentConfig
from shared.settings import Settings
from tests.infra import in_memory, service_app, signed


async def nothing_spent() -> Spend:
    return Spend(month_to_date_usd=0.0)


SETTINGS = Settings(nats_url="nats://in-memory", database_url="postgresql://unused/none")


def spy(broker: NatsBroker, event_type: str) -> list[Any]:
    """Collects every event the service publishes as `event_type`, decoded."""
    seen: list[Any] = []

    @broker.subscriber(f"agentops.{event_type}", stream=stream_for(SETTINGS))
    async def collect(msg: NatsMessage) -> None:
        seen.append(parse_event(msg.body))

    return seen


async def test_planner_turns_a_command_into_a_sized_plan() -> None:
    app = service_app("planner", SETTINGS)
    seen = spy(app.broker, "plan.proposed")

    async with in_memory(app) as br:
        event = IntentReceived(
            plan_id=uuid.uuid4().hex,
            actor="alice",
            data=IntentReceivedData(command="deploy llama 3.1 8b for chatbot-x", user_id="alice"),
        )
        await br.publish(**signed(event, "gateway"), subject="agentops.intent.received")
    assert len(seen) == 1
    plan = seen[0].data
    assert plan.config.endpoint_name == "chatbot-x-staging"
    assert plan.config.instance_type.startswith("ml.g")  # a GPU, never a CPU instance for an 8B LLM
    assert seen[0].causation_id == event.id


async def test_planner_records_garbage_as_rejected_instead_of_crashing() -> None:
    app = service_app("planner", SETTINGS)
    rejected = spy(app.broker, "message.rejected")

    async with in_memory(app) as br:
        await br.publish(b'{"plan_id": "p1", "type": "intent.received"}', "agentops.intent.received")
    assert len(rejected) == 1


async def test_prod_plan_is_held_for_approval_and_a_second_person_releases_it() -> None:
    store: MemoryStore[GuardedPlan] = MemoryStore()
    app = service_app("guardian", SETTINGS, store=store, spend=nothing_spent)
    out = {kind: spy(app.broker, kind) for kind in ("approval.requested", "deployment.requested")}

    config = SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name="chatbot-x-prod",
        instance_type="ml.g5.2xlarge",
        instance_count=2,
        budget_usd_per_hour=20,
    )
    proposed = PlanProposed(
        plan_id="plan-1",
        actor="planner",
        data=PlanProposedData(
            intent="deploy", env=Env.PROD, user_id="alice", model_id=config.model_name, config=config
        ),
    )
    async with in_memory(app) as br:
        await br.publish(**signed(proposed, "planner"), subject="agentops.plan.proposed")
        assert len(out["approval.requested"]) == 1 and out["deployment.requested"] == []
        assert (await store.get("plan-1")).state == "pending_approval"  # type: ignore[union-attr]

        self_approval = ApprovalDecided(
            plan_id="plan-1", actor="alice", data=ApprovalDecidedData(decision="approved", approver="alice")
        )
        await br.publish(**signed(self_approval, "gateway"), subject="agentops.approval.decided")
        assert out["deployment.requested"] == []

        approval = ApprovalDecided(
            plan_id="plan-1", actor="bob", data=ApprovalDecidedData(decision="approved", approver="bob")
        )
        await br.publish(**signed(approval, "gateway"), subject="agentops.approval.decided")
    assert len(out["deployment.requested"]) == 1


async def test_executor_dry_run_reports_the_calls_and_remembers_what_it_made() -> None:
    store: MemoryStore[Deployed] = MemoryStore()
    app = service_app("executor", SETTINGS, store=store)
    statuses = spy(app.broker, "deployment.status")

    config = SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name="chatbot-x-staging",
        instance_type="ml.g5.2xlarge",
        instance_count=1,
        budget_usd_per_hour=20,
    )
    request = DeploymentRequested(
        plan_id="plan-2",
        actor="guardian",
        data=DeploymentRequestedData(env=Env.STAGING, config=config, estimated_usd_per_hour=1.5),
    )
    async with in_memory(app) as br:
        await br.publish(**signed(request, "guardian"), subject="agentops.deployment.requested")
    assert [s.data.status for s in statuses] == ["deploying", "deployed"]
    assert [c.operation for c in statuses[0].data.calls] == [
        "CreateModel",
        "CreateEndpointConfig",
        "PutMetricAlarm",
        "PutMetricAlarm",
        "CreateEndpoint",
    ]
    assert (await store.get("plan-2")).endpoint_live  # type: ignore[union-attr]
