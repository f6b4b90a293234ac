"""What AWS billed this month per budget scope, from Cost Explorer. Budgets act on the larger of
this and the audit-log meter (shared/costs.py): the meter is current to the second but knows only
instance hours at catalog prices; Cost Explorer knows the bill (storage, data, discounts, anything
made outside AgentOps under its tags) but lags by up to a day. Taking the larger never under-counts.

The executor tags everything it creates with `agentops:env` and `agentops:app`; grouping by them
needs both activated as cost allocation tags in the billing console (AWS starts reporting a tag
up to a day after activation). Used in `aws` mode, and in `sandbox` against moto's Cost Explorer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any

from shared.budgets import Standing, standing
from shared.settings import ExecutorMode, Settings

log = logging.getLogger(__name__)
LAG = "Cost Explorer's figures lag the bill by up to 24 hours"
TAGS = {"env": "agentops:env", "app": "agentops:app"}


def month_query(now: datetime, tag: str) -> dict[str, Any]:
    """`GetCostAndUsage` for this month to date, Amazon SageMaker only, grouped by one tag."""
    start = now.date().replace(day=1)
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": (now.date() + timedelta(days=1)).isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon SageMaker"]}},
        "GroupBy": [{"Type": "TAG", "Key": tag}],
    }


def by_scope(answer: dict[str, Any], kind: str) -> dict[str, float]:
    """`{"env:prod": 12.5, ...}` from a grouped answer: Cost Explorer names each group `tag$value`
    (`agentops:env$prod`); an empty value is spend without the tag, which no scope owns."""
    found: dict[str, float] = {}
    for period in answer.get("ResultsByTime", []):
        for group in period.get("Groups", []):
            key = (group.get("Keys") or [""])[0]
            value = key.split("$", 1)[1] if "$" in key else ""
            if not value:
                continue
            amount = float(group.get("Metrics", {}).get("UnblendedCost", {}).get("Amount", 0) or 0)
            found[f"{kind}:{value}"] = found.get(f"{kind}:{value}", 0.0) + amount
    return {scope: round(usd, 4) for scope, usd in found.items()}


def with_billed(meter: dict[str, Standing], billed: dict[str, float], now: datetime) -> dict[str, Standing]:
    """Each scope's standing on the larger of the meter's spend and the bill's; the forecast adds
    the meter's run rate (what bills now) to whichever is larger."""
    combined = dict(meter)
    for scope, usd in billed.items():
        mine = meter.get(scope)
        if mine is None or usd > mine.spend_usd:
            combined[scope] = standing(usd, mine.run_rate_usd_per_hour if mine else 0.0, now)
    return combined


class Billed:
    """Cost Explorer's month to date per scope, cached (it changes a few times a day and bills per
    request). A failure is logged and counts as nothing billed: the meter still holds."""

    def __init__(self, client: Any, cache_seconds: float = 3600.0) -> None:
        self.client, self.cache_seconds = client, cache_seconds
        self._cached: tuple[float, date, dict[str, float]] | None = None
        self.problem: str | None = None  # why the last read failed, for the API to say

    @classmethod
    def from_settings(cls, settings: Settings) -> Billed | None:
        if settings.executor_mode is ExecutorMode.DRY_RUN:
            return None
        import boto3

        kwargs: dict[str, Any] = {"region_name": "us-east-1"}  # Cost Explorer's one endpoint
        if settings.executor_mode is ExecutorMode.SANDBOX:
            kwargs["endpoint_url"] = settings.sagemaker_endpoint_url  # moto serves every service there
        return cls(boto3.client("ce", **kwargs), settings.cost_cache_seconds)

    async def __call__(self, now: datetime) -> dict[str, float]:
        cached = self._cached
        if cached and cached[1] == now.date() and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[2]
        try:
            found: dict[str, float] = {}
            for kind, tag in TAGS.items():
                answer = await asyncio.to_thread(self.client.get_cost_and_usage, **month_query(now, tag))
                found |= by_scope(answer, kind)
        except Exception as exc:  # no permission, throttled, unreachable: the meter alone
            self.problem = f"Cost Explorer could not be read ({type(exc).__name__}); budgets use the meter alone"
            log.warning("%s: %s", self.problem, exc)
            return cached[2] if cached else {}
        self.problem = None
        self._cached = (time.monotonic(), now.date(), found)
        return found
