"""When a deployment runs, as the gateway shows and changes it: its rules as the executor reads
them (what was set, else the plan's own idle rule), the view the API and the dashboard show, and
the audited `schedule.set` that changes them (from the API or a command in words)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field, field_validator

from services.gateway.auth import Principal
from services.gateway.schemas import Response, Strict
from shared.events import Event, ScheduleSet, ScheduleSetData
from shared.models import PlanStatus
from shared.readmodels import PlanRow
from shared.schedules import RULE_NAMES, RuleName, Rules, Schedule, check_idle_minutes, merged, next_transition, wanted
from shared.settings import ExecutorMode

# a plan that holds (or will hold) an endpoint: what a schedule or idle rule can apply to
ENDED = frozenset({PlanStatus.DELETED, PlanStatus.VALIDATION_FAILED, PlanStatus.REJECTED, PlanStatus.FAILED})
Send = Callable[[Event], Awaitable[None]]


class ScheduleRequest(Strict):
    schedule: Schedule | None = Field(default=None, description="a weekly running window; None: no schedule")
    idle_pause_minutes: float | None = Field(
        default=None, description="pause after this many whole minutes without invocations; None: never"
    )

    @field_validator("idle_pause_minutes")
    @classmethod
    def _idle(cls, value: float | None) -> int | None:
        return None if value is None else check_idle_minutes(value)


class Next(BaseModel):
    at: datetime
    action: Literal["restart", "pause"]


class ScheduleView(Response):
    plan_id: str
    endpoint_name: str | None
    env: str
    status: PlanStatus
    schedule: Schedule | None
    idle_pause_minutes: int | None
    source: Literal["set", "plan", "none"] = Field(
        description="set: through this API or a command; plan: the plan's own (its env's default); none"
    )
    set_by: str | None = None
    set_at: datetime | None = None
    wanted_now: Literal["running", "paused"] | None = Field(description="what the schedule wants now")
    next: Next | None = Field(description="the schedule's next restart or pause")
    idle_check: str = Field(description="how idleness is read, or why it is not")


class ScheduleChanged(Response):
    status: Literal["accepted"] = "accepted"
    command_id: str
    plan_id: str
    message: str
    schedule: ScheduleView


def rules_of(row: PlanRow) -> tuple[Rules, Literal["set", "plan", "none"]]:
    """What decides when the deployment runs, as the executor reads it."""
    if row.details.schedule is not None:
        return row.details.schedule.rules, "set"
    idle = row.artifact.idle_pause_minutes if row.artifact is not None else None
    return Rules(idle_pause_minutes=idle), "plan" if idle is not None else "none"


def view(row: PlanRow, mode: ExecutorMode, rules: Rules | None = None, now: datetime | None = None) -> ScheduleView:
    said, source = rules_of(row)
    rules, now = rules or said, now or datetime.now(UTC)
    nxt = next_transition(rules.schedule, now) if rules.schedule else None
    set_ = row.details.schedule
    return ScheduleView(
        plan_id=row.plan_id,
        endpoint_name=row.details.endpoint_name or (row.artifact.endpoint_name if row.artifact else None),
        env=row.env.value,
        status=row.status,
        schedule=rules.schedule,
        idle_pause_minutes=rules.idle_pause_minutes,
        source=source,
        set_by=set_.set_by if set_ else None,
        set_at=set_.set_at if set_ else None,
        wanted_now=wanted(rules.schedule, now) if rules.schedule else None,
        next=Next(at=nxt[0], action=nxt[1]) if nxt else None,
        idle_check=(
            "not checked in dry-run: a described endpoint serves nothing (sandbox and aws read CloudWatch)"
            if mode is ExecutorMode.DRY_RUN
            else "CloudWatch AWS/SageMaker Invocations, per minute"
        ),
    )


async def send_rules(
    send: Send, mode: ExecutorMode, row: PlanRow, rules: Rules, who: Principal, fields: list[RuleName] | None = None
) -> ScheduleChanged:
    """Set `fields` of the deployment's rules (default: both) to those of `rules`."""
    fields = fields or list(RULE_NAMES)
    if row.status in ENDED:
        raise HTTPException(
            409, f"plan {row.plan_id} is {row.status.value}: a schedule applies to a deployment that has an endpoint"
        )
    endpoint = row.details.endpoint_name or (row.artifact.endpoint_name if row.artifact else None)
    if endpoint is None:
        raise HTTPException(409, f"plan {row.plan_id} has no endpoint yet: set its schedule once it is planned")
    event = ScheduleSet(
        plan_id=row.plan_id,
        actor=who.user_id,
        data=ScheduleSetData(endpoint_name=endpoint, rules=rules, fields=fields, set_by=who.user_id),
    )
    rules = merged(rules_of(row)[0], rules, fields)  # as the log will have it (the read model may lag)
    await send(event)
    said = [rules.schedule.describe()] if rules.schedule else []
    said += [f"paused after {rules.idle_pause_minutes} idle minutes"] if rules.idle_pause_minutes else []
    return ScheduleChanged(
        command_id=str(event.id),
        plan_id=row.plan_id,
        message=f"{endpoint}: "
        + ("; ".join(said) if said else "no schedule and no idle pause")
        + f", set by {who.user_id}",
        schedule=view(row, mode, rules).model_copy(update={"source": "set", "set_by": who.user_id}),
    )
