"""Month-to-date spend for the monthly budget check, read through the SELECT-only role."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.costs import month_to_date_usd
from shared.db import deployments, make_engine
from shared.guardrails import Spend
from shared.settings import Settings


class SpendSource:
    """The audit-log estimate, cached briefly: it scans the cost events, and plans arrive in bursts.

    A failure to read it is raised, so the plan is redelivered later rather than passed unchecked.
    """

    def __init__(self, engine: AsyncEngine, max_age_seconds: float = 5.0) -> None:
        self.engine, self.max_age = engine, max_age_seconds
        self._cached: tuple[float, Spend] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SpendSource | None:
        if not settings.database_url:
            return None
        return cls(make_engine(settings.service_database_url), settings.spend_cache_seconds)

    async def __call__(self) -> Spend:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.max_age:
            self._cached = (now, Spend(await month_to_date_usd(self.engine)))
        return self._cached[1]

    async def close(self) -> None:
        await self.engine.dispose()


class PlanStatuses:
    """A plan's status in the read model (None: not there yet), for telling whether the plan that
    holds an endpoint has ended (failed, deleted) and so frees it. Read through the same role."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __call__(self, plan_id: str) -> str | None:
        async with self.engine.connect() as conn:
            status = await conn.scalar(select(deployments.c.status).where(deployments.c.plan_id == plan_id))
        return None if status is None else str(status)
