"""Guardian: validates plans, gates production behind approvals, re-validates what spends money."""

from __future__ import annotations

from datetime import UTC, datetime

from faststream import FastStream

from services.guardian.approvals import SERVICE, GuardedPlan, Outcome, Policy, on_action, on_decision, on_plan
from shared import catalog
from shared.broker import Publisher, build_broker, durable, ensure_stream
from shared.events import ApprovalDecided, DeploymentAction, PlanProposed
from shared.kv import KvStore, Store
from shared.settings import Settings


def create_app(settings: Settings, store: Store[GuardedPlan] | None = None) -> FastStream:
    broker = build_broker(settings, SERVICE)
    publish = Publisher(broker, settings, ["plan.rejected", "approval.requested", "deployment.requested"])
    plans: Store[GuardedPlan] = store or KvStore(broker, "guardian-plans", GuardedPlan, settings.stream_replicas)
    policy = Policy(catalog.models(), catalog.instances(), settings)

    async def settle(plan_id: str, outcome: Outcome) -> None:
        events, record = outcome
        for event in events:  # publish first: a crash before the put is redelivered and deduplicated
            await publish(event)
        if record is not None:
            await plans.put(plan_id, record)

    @durable(broker, settings, "plan.proposed", SERVICE, max_workers=4)
    async def on_proposed(event: PlanProposed) -> None:
        await settle(event.plan_id, on_plan(event, policy, datetime.now(UTC)))

    @durable(broker, settings, "approval.decided", SERVICE)
    async def on_decided(event: ApprovalDecided) -> None:
        plan = await plans.get(event.plan_id)
        await settle(event.plan_id, on_decision(event, plan, policy, datetime.now(UTC)))

    @durable(broker, settings, "deployment.action", SERVICE)
    async def on_lifecycle(event: DeploymentAction) -> None:
        plan = await plans.get(event.plan_id)
        await settle(event.plan_id, on_action(event, plan, policy))

    app = FastStream(broker)

    @app.on_startup
    async def _stream() -> None:
        await ensure_stream(settings.nats_url, settings)

    return app
