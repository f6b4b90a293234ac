"""Guardian: validates plans, gates production behind approvals, re-validates what spends money."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from faststream import FastStream

from services.guardian.approvals import (
    SERVICE,
    GuardedPlan,
    Outcome,
    Policy,
    after_expiry,
    due_for_expiry,
    expire,
    on_action,
    on_decision,
    on_plan,
)
from services.guardian.guardrails import Spend
from services.guardian.spend import SpendSource
from shared import catalog
from shared.broker import Publisher, build_broker, deliveries, durable, load_identity, wait_for_stream, watch_consumers
from shared.events import ApprovalDecided, DeploymentAction, PlanProposed
from shared.kv import KvStore, MemoryStore, Store
from shared.settings import Settings

log = logging.getLogger(__name__)
DECISION_WAIT_DELIVERIES = 30  # about half a minute of redeliveries before a decision is dropped
SpendFn = Callable[[], Awaitable[Spend]]


def create_app(
    settings: Settings,
    store: Store[GuardedPlan] | None = None,
    spend: SpendFn | None = None,
    pending_store: Store[GuardedPlan] | None = None,
) -> FastStream:
    identity = load_identity(settings, SERVICE)
    broker = build_broker(settings, identity)
    publish = Publisher(
        broker,
        settings,
        ["plan.rejected", "approval.requested", "approval.decided", "deployment.requested"],
        identity.signer,
    )
    plans: Store[GuardedPlan] = store or KvStore(broker, "guardian-plans", GuardedPlan, settings.stream_replicas)
    # Only the plans waiting for a decision, so the expiry sweep reads those and not every plan
    # ever validated (it used to list the whole bucket every round, which grew without bound).
    pending: Store[GuardedPlan] = pending_store or (
        MemoryStore()
        if store is not None
        else KvStore(broker, "guardian-pending", GuardedPlan, settings.stream_replicas)
    )
    policy = Policy(catalog.models(), catalog.instances(), settings)
    source = None if spend else SpendSource.from_settings(settings)
    spend_fn: SpendFn | None = spend or source

    async def month() -> Spend | None:
        return await spend_fn() if spend_fn else None

    async def settle(plan_id: str, outcome: Outcome) -> None:
        events, record = outcome
        for event in events:  # publish first: a crash before the put is redelivered and deduplicated
            await publish(event)
        if record is not None:
            await plans.put(plan_id, record)
            if record.waiting:
                await pending.put(plan_id, record)
            elif record.expires_at is not None:  # it went through approval: no longer waiting
                await pending.delete(plan_id)

    @durable(broker, settings, "plan.proposed", SERVICE, max_workers=4)
    async def on_proposed(event: PlanProposed) -> None:
        await settle(event.plan_id, on_plan(event, policy, datetime.now(UTC), await month()))

    @durable(broker, settings, "approval.decided", SERVICE)
    async def on_decided(event: ApprovalDecided) -> None:
        plan = await plans.get(event.plan_id)
        if plan is None and deliveries() < DECISION_WAIT_DELIVERIES:
            # The request this decides was published, so its record is coming: the handler that
            # published it failed before storing it and is being retried. Dropping the decision
            # here lost approvals under outages; wait for the record instead (nacked, redelivered).
            raise RuntimeError(f"no record of plan {event.plan_id} yet; retrying the decision")
        await settle(event.plan_id, on_decision(event, plan, policy, datetime.now(UTC), await month()))

    @durable(broker, settings, "deployment.action", SERVICE)
    async def on_lifecycle(event: DeploymentAction) -> None:
        plan = await plans.get(event.plan_id)
        await settle(event.plan_id, on_action(event, plan, policy, await month(), datetime.now(UTC)))

    stopping = asyncio.Event()

    async def sweep() -> None:
        """Requests nobody decided in time become `expired`, even if no late approval ever arrives."""
        try:  # once per start: index what an older version left pending without the index
            for key in await plans.keys():
                plan = await plans.get(key)
                if plan is not None and plan.waiting:
                    await pending.put(key, plan)
        except Exception:
            log.exception("indexing pending approvals failed; new requests are indexed as they come")
        while not stopping.is_set():
            await asyncio.sleep(settings.approval_sweep_seconds)
            try:
                now = datetime.now(UTC)
                for key in await pending.keys():
                    plan = await plans.get(key)
                    if plan is None or not plan.waiting:
                        await pending.delete(key)
                    elif due_for_expiry(plan, now):
                        await settle(key, ([expire(plan)], after_expiry(plan)))
            except Exception:  # the broker may be away; the next round tries again
                log.exception("approval expiry sweep failed; retrying next round")

    app = FastStream(broker)
    watch_consumers(app, broker, settings, SERVICE)
    tasks: list[asyncio.Task[None]] = []

    @app.on_startup
    async def _stream() -> None:
        await wait_for_stream(broker, settings)

    @app.after_startup
    async def _sweeper() -> None:
        tasks.append(asyncio.create_task(sweep()))

    @app.on_shutdown
    async def _stop() -> None:
        stopping.set()
        for task in tasks:
            task.cancel()
        # nats-py can swallow a cancellation inside a KV read (asyncio.wait_for's race): the sweep
        # then runs on, and awaiting it would hang shutdown (seen in CI). Bounded, as the auditor's.
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if source is not None:
            await source.close()

    return app
