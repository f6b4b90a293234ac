"""Monthly budgets: `GET /api/budgets` (each with spend, forecast and the thresholds it is past),
`PUT /api/budgets/{scope}` and `DELETE /api/budgets/{scope}` (admin; audited as `budget.set`,
which the guardian keeps and acts on)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from services.gateway.api import GatewayDep, Viewer, rate_limit
from services.gateway.auth import Principal, Role, require
from services.gateway.schemas import Response, Strict
from shared.billing import LAG, with_billed
from shared.budgets import SCOPE, Budget, Threshold, crossed, default_thresholds
from shared.costs import standings
from shared.db import audit_events
from shared.events import BudgetSet, BudgetSetData, budget_plan_id

router = APIRouter(tags=["budgets"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
ScopePath = Annotated[str, Path(description="env:<dev|staging|prod> or app:<app>", max_length=60)]


class BudgetRequest(Strict):
    monthly_usd: float = Field(description="USD a month, over 0")
    thresholds: list[Threshold] | None = Field(
        default=None, description="default: 50 % notify, 80 % of the forecast notify, 100 % block"
    )


class BudgetView(Response):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    scope: str
    monthly_usd: float
    thresholds: list[Threshold]
    spend_usd: float = Field(
        description="month to date: the audit-log meter, or what AWS billed (Cost Explorer) when that is more"
    )
    metered_usd: float = Field(description="month to date by the audit-log meter (instance hours x catalog price)")
    billed_usd: float | None = Field(
        description="month to date by Cost Explorer (aws and sandbox modes; it lags by up to 24 hours); null when "
        "not read"
    )
    forecast_usd: float = Field(description="month to date plus the current run rate to the month's end")
    run_rate_usd_per_hour: float
    crossed: list[Threshold] = Field(description="the thresholds the scope is past now")
    basis: str = Field(description="where spend_usd comes from, and how current it is")
    set_by: str | None = Field(default=None, description="who set it (None: the BUDGETS setting)")


class BudgetChanged(BaseModel):
    status: str = "accepted"
    scope: str
    message: str


@router.get("/api/budgets")
async def list_budgets(gw: GatewayDep, _who: Viewer) -> list[BudgetView]:
    budgets: dict[str, tuple[Budget, str | None]] = {
        scope: (Budget(scope=scope, monthly_usd=usd), None) for scope, usd in gw.settings.budgets.items()
    }
    query = (
        select(audit_events.c.payload["data"]).where(audit_events.c.type == "budget.set").order_by(audit_events.c.seq)
    )
    async with gw.read.engine.connect() as conn:
        for (data,) in await conn.execute(query):
            said = BudgetSetData.model_validate(data)
            if said.budget is None:
                budgets.pop(said.scope, None)
            else:
                budgets[said.scope] = (said.budget, said.set_by)
    now = datetime.now(UTC)
    metered = await standings(gw.read.engine, now) if budgets else {}
    billed = await gw.billed(now) if budgets and gw.billed is not None else None
    where = with_billed(metered, billed, now) if billed is not None else metered
    if gw.billed is None:
        basis = "the audit-log meter (dry-run: no bill to read)"
    elif gw.billed.problem:
        basis = f"the audit-log meter: {gw.billed.problem}"
    else:
        basis = f"the larger of the audit-log meter and Cost Explorer ({LAG})"
    views = []
    for scope, (budget, set_by) in sorted(budgets.items()):
        s = where.get(scope)
        m = metered.get(scope)
        spend, forecast, rate = (s.spend_usd, s.forecast_usd, s.run_rate_usd_per_hour) if s else (0.0, 0.0, 0.0)
        views.append(
            BudgetView(
                scope=scope,
                monthly_usd=budget.monthly_usd,
                thresholds=budget.thresholds,
                spend_usd=spend,
                forecast_usd=forecast,
                run_rate_usd_per_hour=rate,
                metered_usd=m.spend_usd if m else 0.0,
                billed_usd=None if billed is None else billed.get(scope, 0.0),
                basis=basis,
                crossed=crossed(budget, s) if s else [],
                set_by=set_by,
            )
        )
    return views


@router.put("/api/budgets/{scope}")
async def set_budget(scope: ScopePath, body: BudgetRequest, gw: GatewayDep, who: Admin) -> BudgetChanged:
    """Set or change a scope's monthly budget (the guardian acts on it from its next check)."""
    rate_limit(gw, who)
    _scope(scope)
    try:
        budget = Budget(scope=scope, monthly_usd=body.monthly_usd, thresholds=body.thresholds or default_thresholds())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise HTTPException(422, f"the budget is not valid: {problems}") from None
    await gw.send(_event(scope, budget, who))
    return BudgetChanged(scope=scope, message=f"{scope}: ${budget.monthly_usd:,.2f} a month, set by {who.user_id}")


@router.delete("/api/budgets/{scope}")
async def remove_budget(scope: ScopePath, gw: GatewayDep, who: Admin) -> BudgetChanged:
    rate_limit(gw, who)
    _scope(scope)
    await gw.send(_event(scope, None, who))
    return BudgetChanged(scope=scope, message=f"{scope}: no budget from now, removed by {who.user_id}")


def _scope(scope: str) -> None:
    if not re.fullmatch(SCOPE, scope):
        raise HTTPException(422, f"{scope!r} is not a budget scope: use env:<dev|staging|prod> or app:<app>")


def _event(scope: str, budget: Budget | None, who: Principal) -> BudgetSet:
    _scope(scope)
    data = BudgetSetData(scope=scope, budget=budget, set_by=who.user_id)
    return BudgetSet(plan_id=budget_plan_id(scope), actor=who.user_id, data=data)
