"""Guardian: validates plans, gates production behind approvals, re-validates what spends money."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream

from services.guardian.approvals import SERVICE, EndpointOwner, GuardedPlan, Policy
from services.guardian.budgeting import BudgetRecord, Budgets
from services.guardian.service import Guardian, SpendFn, StatusFn
from services.guardian.spend import PlanStatuses, SpendSource
from shared import catalog
from shared.billing import Billed, with_billed
from shared.budgets import Standing
from shared.bus import Bus
from shared.costs import live_in_scope, standings
from shared.events import ApprovalDecided, BudgetSet, DeploymentAction, DeploymentChanged, PlanProposed
from shared.hub import Hub
from shared.kv import KvStore, MemoryStore, Store
from shared.models import utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)
PRODUCES = [
    "plan.rejected",
    "approval.requested",
    "approval.decided",
    "deployment.requested",
    "budget.threshold_crossed",
    "deployment.action",  # pause only, for a budget past a pause threshold
]


# a minute to a week: approvers answer in minutes, requests expire after hours (APPROVAL_TTL_HOURS)
DECISION_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0, 604800.0)


def create_app(
    settings: Settings,
    bus: Bus,
    store: Store[GuardedPlan] | None = None,
    spend: SpendFn | None = None,
    pending_store: Store[GuardedPlan] | None = None,
    status_of: StatusFn | None = None,
) -> FastStream:
    assert bus.name == SERVICE
    plans: Store[GuardedPlan] = store or KvStore(bus.broker, "guardian-plans", GuardedPlan, settings.stream_replicas)
    pending: Store[GuardedPlan] = pending_store or (
        MemoryStore()
        if store is not None
        else KvStore(bus.broker, "guardian-pending", GuardedPlan, settings.stream_replicas)
    )
    source = None if spend else SpendSource.from_settings(settings)
    owners: Store[EndpointOwner] = (
        MemoryStore()
        if store is not None
        else KvStore(bus.broker, "guardian-endpoints", EndpointOwner, settings.stream_replicas)
    )
    statuses: StatusFn | None = status_of or (PlanStatuses(source.engine) if source is not None else None)
    policy = Policy(catalog.models(), catalog.instances(), settings)
    waited = bus.metrics.histogram(
        "approval_decision_seconds",
        "from an approval request to the decision that ended it, by decision",
        ("decision",),
        buckets=DECISION_BUCKETS,
    )
    publish = bus.publisher(PRODUCES)
    billed = Billed.from_settings(settings)

    async def budget_standings() -> dict[str, Standing]:
        assert source is not None
        now = utcnow()
        meter = await standings(source.engine, now)
        return with_billed(meter, await billed(now), now) if billed is not None else meter

    budgets = (
        Budgets(
            KvStore(bus.broker, "guardian-budgets", BudgetRecord, settings.stream_replicas),
            publish,
            budget_standings,
            lambda scope: live_in_scope(source.engine, scope),
            initial=settings.budgets,
            max_age_seconds=settings.spend_cache_seconds,
        )
        if source is not None
        else None
    )
    guardian = Guardian(
        plans,
        pending,
        publish,
        policy,
        spend or source,
        decided=lambda decision, seconds: waited.labels(decision).observe(seconds),
        owners=owners,
        status_of=statuses,
        hub=Hub(policy.models, settings.hf_endpoint, timeout=settings.hub_timeout_seconds),
        budgets=budgets,
    )

    @bus.durable("plan.proposed", max_workers=4)
    async def on_proposed(event: PlanProposed) -> None:
        await guardian.on_proposed(event)

    @bus.durable("approval.decided")
    async def on_decided(event: ApprovalDecided) -> None:
        await guardian.on_decided(event, bus.deliveries())

    @bus.durable("deployment.action")
    async def on_lifecycle(event: DeploymentAction) -> None:
        await guardian.on_action(event)

    @bus.durable("budget.set")
    async def on_budget(event: BudgetSet) -> None:
        if budgets is not None:
            await budgets.on_set(event)

    # How the updates it requested ended, and endpoints stopped: the executor's statuses that can
    # change a record, repeated as `deployment.changed` (not every status: two or more a command)
    @bus.durable("deployment.changed")
    async def on_changed(event: DeploymentChanged) -> None:
        await guardian.on_status(event)

    app = bus.app()
    tasks: list[asyncio.Task[None]] = []
    stopping = asyncio.Event()

    @app.after_startup
    async def _sweeper() -> None:
        tasks.append(asyncio.create_task(sweep(guardian, settings.approval_sweep_seconds, stopping)))
        if budgets is not None:
            tasks.append(asyncio.create_task(watch_budgets(budgets, settings.budget_check_seconds, stopping)))

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


async def sweep(guardian: Guardian, every: float, stopping: asyncio.Event) -> None:
    try:
        await guardian.index_pending()
    except Exception:
        log.exception("indexing pending approvals failed; new requests are indexed as they come")
    while not stopping.is_set():
        await asyncio.sleep(every)
        try:
            await guardian.sweep_once()
        except Exception:  # the broker may be away; the next round tries again
            log.exception("approval expiry sweep failed; retrying next round")


async def watch_budgets(budgets: Budgets, every: float, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            for crossing in await budgets.check_once():
                d = crossing.data
                log.warning(
                    "budget %s: past its %g%% %s threshold (%s): $%.2f spent, $%.2f forecast of $%.2f",
                    d.scope,
                    d.threshold.percent,
                    d.threshold.action,
                    d.threshold.basis,
                    d.spend_usd,
                    d.forecast_usd,
                    d.monthly_usd,
                )
        except Exception:  # the database or the broker may be away; the next round tries again
            log.exception("budget check failed; retrying next round")
        await asyncio.sleep(every)
