"""What deployments cost, estimated from the audit log alone.

A deployment is billed while it is ``deploying``, ``deployed``, ``updating`` or ``rolled_back``
(SageMaker bills instances from launch until the endpoint is deleted). Its rate is the
``estimated_usd_per_hour`` of the newest ``deployment.requested`` (deploy, restart, scale, update,
rollback), which the guardian priced as catalog price x instance count, or of a status that says
what the endpoint serves after an update (a rollback returns to the old rate). ``paused``,
``failed`` and ``deleted`` stop the meter.

The estimate is used when Cost Explorer is not configured, and always for the guardian's
month-to-date check of MONTHLY_BUDGET_USD (Cost Explorer lags by up to a day); the budgets per
env and app take the larger of it and the bill (shared/billing.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.budgets import Standing, app_of, scopes_of, standing
from shared.db import audit_events, deployments

BILLING = {"deploying", "deployed", "updating", "rolled_back"}
STOPPED = {"paused", "failed", "deleted"}
COST_EVENT_TYPES = ("deployment.requested", "deployment.status")
HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class CostEvent:
    type: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass
class Meter:
    """The running state of one deployment's bill."""

    rate: float = 0.0
    since: datetime | None = None  # billing started at, None while stopped
    intervals: list[tuple[datetime, datetime, float]] = field(default_factory=list)

    def feed(self, event: CostEvent) -> None:
        if event.type == "deployment.requested":
            if self.since is not None and event.occurred_at > self.since:  # a scale: close the old rate's interval
                self.intervals.append((self.since, event.occurred_at, self.rate))
                self.since = event.occurred_at
            self.rate = float(event.data.get("estimated_usd_per_hour") or 0.0)
        elif event.type == "deployment.status":
            status = event.data.get("status")
            if status in BILLING and self.since is None:
                self.since = event.occurred_at
            if status in BILLING and event.data.get("estimated_usd_per_hour") is not None:
                # an update rolled back (or landed): the rate of what the endpoint serves now
                if self.since is not None and event.occurred_at > self.since:
                    self.intervals.append((self.since, event.occurred_at, self.rate))
                    self.since = event.occurred_at
                self.rate = float(event.data["estimated_usd_per_hour"])
            elif status in STOPPED and self.since is not None:
                self.intervals.append((self.since, event.occurred_at, self.rate))
                self.since = None

    def usd(self, start: datetime, end: datetime) -> float:
        """Spend within [start, end): closed intervals plus the open one up to ``end``."""
        spans = list(self.intervals)
        if self.since is not None:
            spans.append((self.since, end, self.rate))
        total = 0.0
        for a, b, rate in spans:
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += rate * (hi - lo).total_seconds() / 3600.0
        return total

    @property
    def running(self) -> bool:
        return self.since is not None


def meter(events: Iterable[CostEvent]) -> Meter:
    m = Meter()
    for event in events:
        m.feed(event)
    return m


def deployment_cost(events: Iterable[CostEvent], start: datetime, end: datetime) -> float:
    return round(meter(events).usd(start, end), 4)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def cost_events(
    engine: AsyncEngine, plan_id: str | None = None, plan_ids: list[str] | None = None
) -> dict[str, list[CostEvent]]:
    """Every cost-relevant event per plan, in log order."""
    # Only the two fields the meter reads, extracted by PostgreSQL: decoding whole payloads (with
    # their SageMaker call lists) made this the largest cost of the guardian under sustained load.
    data = audit_events.c.payload["data"]
    query = (
        select(
            audit_events.c.plan_id,
            audit_events.c.type,
            audit_events.c.occurred_at,
            data["estimated_usd_per_hour"].astext.label("rate"),
            data["status"].astext.label("status"),
        )
        .where(audit_events.c.type.in_(COST_EVENT_TYPES))
        .order_by(audit_events.c.seq)
    )
    if plan_id is not None:
        query = query.where(audit_events.c.plan_id == plan_id)
    if plan_ids is not None:
        query = query.where(audit_events.c.plan_id.in_(plan_ids))
    per_plan: dict[str, list[CostEvent]] = {}
    async with engine.connect() as conn:
        for row in await conn.execute(query):
            fields = {"estimated_usd_per_hour": float(row.rate) if row.rate is not None else None, "status": row.status}
            per_plan.setdefault(row.plan_id, []).append(CostEvent(row.type, row.occurred_at, fields))
    return per_plan


async def month_to_date_usd(engine: AsyncEngine, now: datetime | None = None) -> float:
    """Estimated spend of every deployment since the first of this month (UTC)."""
    now = now or datetime.now(UTC)
    start = month_start(now)
    per_plan = await cost_events(engine)
    return round(sum(meter(events).usd(start, now) for events in per_plan.values()), 4)


async def costs_so_far(engine: AsyncEngine, plan_ids: list[str], now: datetime | None = None) -> dict[str, float]:
    """Each plan's estimated spend since it began, for a page of the deployment list."""
    if not plan_ids:
        return {}
    now = now or datetime.now(UTC)
    per_plan = await cost_events(engine, plan_ids=plan_ids)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {p: round(meter(per_plan.get(p, [])).usd(epoch, now), 4) for p in plan_ids}


LIVE = ("deploying", "deployed", "updating", "rolled_back")


async def standings(engine: AsyncEngine, now: datetime | None = None) -> dict[str, Standing]:
    """Month-to-date spend, run rate and month-end forecast per budget scope (`env:<env>`,
    `app:<app>`), from the audit-log meter and each plan's env and endpoint."""
    now = now or datetime.now(UTC)
    start = month_start(now)
    per_plan = await cost_events(engine)
    query = select(deployments.c.plan_id, deployments.c.env, deployments.c.details["endpoint_name"].astext)
    async with engine.connect() as conn:
        where = {r[0]: (r[1], r[2]) for r in await conn.execute(query) if r[2]}
    totals: dict[str, list[float]] = {}
    for plan_id, events in per_plan.items():
        if plan_id not in where:
            continue
        env, endpoint = where[plan_id]
        m = meter(events)
        spent, rate = m.usd(start, now), (m.rate if m.running else 0.0)
        for scope in scopes_of(env, app_of(endpoint, env)):
            total = totals.setdefault(scope, [0.0, 0.0])
            total[0] += spent
            total[1] += rate
    return {scope: standing(spent, rate, now) for scope, (spent, rate) in totals.items()}


async def live_in_scope(engine: AsyncEngine, scope: str) -> list[str]:
    """The plans whose endpoints bill now in a budget scope (what a `pause` threshold pauses)."""
    kind, _, name = scope.partition(":")
    query = select(deployments.c.plan_id, deployments.c.env, deployments.c.details["endpoint_name"].astext).where(
        deployments.c.status.in_(LIVE)
    )
    async with engine.connect() as conn:
        rows = list(await conn.execute(query.order_by(deployments.c.plan_id)))
    if kind == "env":
        return [r[0] for r in rows if r[1] == name]
    return [r[0] for r in rows if r[2] and app_of(r[2], r[1]) == name]
