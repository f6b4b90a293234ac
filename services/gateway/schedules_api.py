"""When deployments run: `GET /api/schedules`, and `GET`/`PUT`/`DELETE
/api/deployments/{plan_id}/schedule` (a weekly running window and an idle rule; audited as
`schedule.set`, which the executor keeps and acts on). Commands say the same in words ("keep
chatbot-x running weekdays 8-18 UTC", "pause chatbot-x when idle for 2 hours")."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.api import Deployer, GatewayDep, PlanIdPath, Viewer, existing, rate_limit
from services.gateway.scheduling import (
    ENDED,
    ScheduleChanged,
    ScheduleRequest,
    ScheduleView,
    rules_of,
    send_rules,
    view,
)
from shared.schedules import Rules

router = APIRouter(tags=["schedules"])
MAX_LISTED = 1000


@router.get("/api/schedules")
async def list_schedules(gw: GatewayDep, _who: Viewer) -> list[ScheduleView]:
    """Every deployment with a schedule or an idle rule."""
    rows = await gw.read.deployments(MAX_LISTED, 0)
    mode = gw.settings.executor_mode
    return [view(r, mode) for r in rows if r.status not in ENDED and _any(rules_of(r)[0])]


def _any(rules: Rules) -> bool:
    return rules.schedule is not None or rules.idle_pause_minutes is not None


@router.get("/api/deployments/{plan_id}/schedule", tags=["deployments"])
async def get_schedule(plan_id: PlanIdPath, gw: GatewayDep, _who: Viewer) -> ScheduleView:
    return view(await existing(gw, plan_id), gw.settings.executor_mode)


@router.put("/api/deployments/{plan_id}/schedule", tags=["deployments"], status_code=202)
async def set_schedule(plan_id: PlanIdPath, body: ScheduleRequest, gw: GatewayDep, who: Deployer) -> ScheduleChanged:
    """Set when the deployment runs (replacing what was set, and the plan's own idle rule)."""
    rate_limit(gw, who)
    row = await existing(gw, plan_id)
    idle = None if body.idle_pause_minutes is None else int(body.idle_pause_minutes)
    rules = Rules(schedule=body.schedule, idle_pause_minutes=idle)
    return await send_rules(gw.send, gw.settings.executor_mode, row, rules, who)


@router.delete("/api/deployments/{plan_id}/schedule", tags=["deployments"], status_code=202)
async def remove_schedule(plan_id: PlanIdPath, gw: GatewayDep, who: Deployer) -> ScheduleChanged:
    """No schedule and no idle pause from now (the plan's own idle rule included)."""
    rate_limit(gw, who)
    return await send_rules(gw.send, gw.settings.executor_mode, await existing(gw, plan_id), Rules(), who)
