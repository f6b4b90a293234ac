"""What deployments cost: Cost Explorer when AWS billing is configured, else the audit-log estimate.

The estimate (shared/costs.py) is time spent deploying or deployed x hourly price x count, from the
recorded status events; the guardian's monthly budget check uses the same meter.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway.schemas import MonthlyCost, Period, PlanCost
from shared.costs import cost_events, meter, month_start
from shared.readmodels import PlanRow
from shared.settings import Settings


def _previous_month(start: datetime) -> datetime:
    return (start - timedelta(days=1)).replace(day=1)


def trend(current: float, previous: float) -> tuple[str, float]:
    if previous <= 0:
        return ("up" if current > 0 else "stable"), 0.0
    change = round((current - previous) / previous * 100, 1)
    return ("up" if change > 1 else "down" if change < -1 else "stable"), change


async def estimated_month(engine: AsyncEngine, now: datetime) -> MonthlyCost:
    start = month_start(now)
    prev_start = _previous_month(start)
    elapsed = now - start
    per_plan = await cost_events(engine)
    meters = [meter(events) for events in per_plan.values()]
    current = sum(m.usd(start, now) for m in meters)
    # the same stretch of last month, so a month that just began is not compared with a whole one
    previous = sum(m.usd(prev_start, min(prev_start + elapsed, start)) for m in meters)
    direction, change = trend(current, previous)
    return MonthlyCost(
        amount=round(current, 2),
        trend=direction,  # type: ignore[arg-type]
        percent_change=change,
        period=Period(start=start.isoformat(), end=now.isoformat()),
        estimated=True,
        basis="estimated from the audit log: time deploying or deployed x hourly price x count "
        "(Cost Explorer is used when EXECUTOR_MODE=aws)",
    )


def parse_cost_explorer(answer: dict[str, Any], start: date, end: date, now: datetime) -> MonthlyCost:
    """`GetCostAndUsage` with MONTHLY granularity over last month and this month, SageMaker only."""
    amounts = [float(r["Total"]["UnblendedCost"]["Amount"]) for r in answer.get("ResultsByTime", [])]
    currency = next(
        (r["Total"]["UnblendedCost"]["Unit"] for r in answer.get("ResultsByTime", []) if r.get("Total")), "USD"
    )
    previous, current = (amounts[-2], amounts[-1]) if len(amounts) >= 2 else (0.0, amounts[-1] if amounts else 0.0)
    direction, change = trend(current, previous)
    return MonthlyCost(
        amount=round(current, 2),
        currency=currency,
        trend=direction,  # type: ignore[arg-type]
        percent_change=change,
        period=Period(start=start.isoformat(), end=now.isoformat()),
        estimated=False,
        basis="AWS Cost Explorer, Amazon SageMaker, unblended cost",
    )


class CostExplorer:
    """Cached (COST_CACHE_SECONDS): Cost Explorer bills per request and changes a few times a day."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = boto3.client("ce", region_name="us-east-1")  # Cost Explorer's one endpoint
        self._cached: tuple[float, MonthlyCost] | None = None

    async def month(self, now: datetime) -> MonthlyCost:
        if self._cached and time.monotonic() - self._cached[0] < self.settings.cost_cache_seconds:
            return self._cached[1]
        start = month_start(now).date()
        query = {
            "TimePeriod": {
                "Start": _previous_month(month_start(now)).date().isoformat(),
                "End": (now.date() + timedelta(days=1)).isoformat(),
            },
            "Granularity": "MONTHLY",
            "Metrics": ["UnblendedCost"],
            "Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon SageMaker"]}},
        }
        answer = await asyncio.to_thread(self.client.get_cost_and_usage, **query)
        result = parse_cost_explorer(answer, start, now.date(), now)
        self._cached = (time.monotonic(), result)
        return result


async def plan_cost(engine: AsyncEngine, plan_id: str, row: PlanRow, now: datetime) -> PlanCost:
    per_plan = await cost_events(engine, plan_id)
    m = meter(per_plan.get(plan_id, []))
    hourly = float(row.details.estimated_usd_per_hour or 0.0)
    return PlanCost(
        plan_id=plan_id,
        usd=round(m.usd(datetime(1970, 1, 1, tzinfo=UTC), now), 4),
        month_to_date_usd=round(m.usd(month_start(now), now), 4),
        usd_per_hour=hourly if m.running else 0.0,
        running=m.running,
        estimated=True,
        basis="time deploying or deployed x hourly price x count, from the audit log",
    )
