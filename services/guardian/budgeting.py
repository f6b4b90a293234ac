"""The guardian's budgets: kept from `budget.set` events (and BUDGETS at start), checked on a timer
and before anything spends more. The rules are shared/budgets.py; this holds the state and acts:
`budget.threshold_crossed` once per threshold per month, and for a `pause` threshold one
`deployment.action` pause per live plan in the scope, with the budget as its actor."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.budgets import Budget, Standing, blocking, crossed, crossing_id, period
from shared.bus import Publish
from shared.events import (
    BudgetSet,
    BudgetThresholdCrossed,
    BudgetThresholdCrossedData,
    DeploymentAction,
    DeploymentActionData,
    budget_plan_id,
    derive_event_id,
)
from shared.kv import Store
from shared.models import Action, Env, Finding, utcnow

log = logging.getLogger(__name__)
SERVICE = "guardian"
BUDGETS_MAX_AGE = 5.0
StandingsFn = Callable[[], Awaitable[dict[str, Standing]]]
LiveFn = Callable[[str], Awaitable[list[str]]]


class BudgetRecord(BaseModel):
    """A scope's budget (None: removed, so BUDGETS no longer applies either), or a crossing seen."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    budget: Budget | None = None


class Budgets:
    def __init__(
        self,
        store: Store[BudgetRecord],
        publish: Publish,
        standings: StandingsFn,
        live: LiveFn,
        initial: dict[str, float] | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_age_seconds: float = 30.0,
    ) -> None:
        self.store, self.publish, self.standings_of, self.live = store, publish, standings, live
        self.initial = {scope: Budget(scope=scope, monthly_usd=usd) for scope, usd in (initial or {}).items()}
        self.clock, self.max_age = clock, max_age_seconds
        self._cached: tuple[float, dict[str, Standing]] | None = None
        self._budgets: tuple[float, dict[str, Budget]] | None = None

    async def on_set(self, event: BudgetSet) -> None:
        await self.store.put(_key(event.data.scope), BudgetRecord(budget=event.data.budget))
        self._cached = self._budgets = None

    async def budgets(self) -> dict[str, Budget]:
        """The budgets in force: read from the bucket at most every few seconds (every plan asks;
        another replica of the guardian may have taken a change)."""
        now = time.monotonic()
        if self._budgets is None or now - self._budgets[0] > BUDGETS_MAX_AGE:
            self._budgets = (now, await self._read())
        return self._budgets[1]

    async def _read(self) -> dict[str, Budget]:
        found = dict(self.initial)
        for key in await self.store.keys():
            if not key.startswith("scope."):
                continue
            record = await self.store.get(key)
            if record is None:
                continue
            scope = _scope(key)
            if record.budget is None:
                found.pop(scope, None)
            else:
                found[scope] = record.budget
        return found

    async def _standings(self, fresh: bool = False) -> dict[str, Standing]:
        now = time.monotonic()
        if fresh or self._cached is None or now - self._cached[0] > self.max_age:
            self._cached = (now, await self.standings_of())
        return self._cached[1]

    async def blocking(self, env: Env, app: str) -> list[Finding]:
        """What refuses a plan or change that spends more in (env, app) now."""
        budgets = await self.budgets()
        if not budgets:
            return []
        return blocking(budgets, await self._standings(), env, app)

    async def check_once(self) -> list[BudgetThresholdCrossed]:
        """Announce (and act on) every threshold crossed this month that was not announced yet."""
        budgets = await self.budgets()
        if not budgets:
            return []
        standings, now = await self._standings(fresh=True), self.clock()
        month, announced = period(now), []
        for budget in budgets.values():
            where = standings.get(budget.scope)
            if where is None:
                continue
            for threshold in crossed(budget, where):
                event_id = crossing_id(budget, threshold, month)
                seen = f"crossed.{event_id}"
                if await self.store.get(seen) is not None:
                    continue
                paused = await self._pause(budget, event_id) if threshold.action == "pause" else []
                data = BudgetThresholdCrossedData(
                    scope=budget.scope,
                    period=month,
                    monthly_usd=budget.monthly_usd,
                    threshold=threshold,
                    spend_usd=where.spend_usd,
                    forecast_usd=where.forecast_usd,
                    run_rate_usd_per_hour=where.run_rate_usd_per_hour,
                    paused=paused,
                )
                event = BudgetThresholdCrossed(
                    id=event_id, plan_id=budget_plan_id(budget.scope), actor=SERVICE, data=data, occurred_at=now
                )
                await self.publish(event)  # first: a crash before the record repeats the same event id
                await self.store.put(seen, BudgetRecord())
                announced.append(event)
        return announced

    async def _pause(self, budget: Budget, crossing: uuid.UUID) -> list[str]:
        actor = f"budget:{budget.scope}"
        plans = await self.live(budget.scope)
        for plan_id in plans:
            action = DeploymentAction(
                id=derive_event_id(crossing, f"pause:{plan_id}"),
                plan_id=plan_id,
                actor=actor,
                data=DeploymentActionData(action=Action.PAUSE, requested_by=actor),
            )
            await self.publish(action)
        return plans


def _key(scope: str) -> str:
    return "scope." + scope.replace(":", "_")


def _scope(key: str) -> str:
    return key.removeprefix("scope.").replace("_", ":", 1)
