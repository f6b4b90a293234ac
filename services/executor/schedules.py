"""The executor's schedules and idle rules: kept from `schedule.set` (else each plan's own
`idle_pause_minutes`), checked every SCHEDULE_CHECK_SECONDS against its records, CloudWatch and
the clock. It acts the way a person does, through audited `deployment.action`s: a pause (its own
consumer carries it out, model and config kept) or, when a schedule's window opens, a restart,
which the guardian checks like anyone's (in prod it waits for approvers; a blocking budget refuses
it). The rules themselves are shared/schedules.py."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.executor.lifecycle import Deployed
from shared.bus import Publish
from shared.events import DeploymentAction, DeploymentActionData, ScheduleSet
from shared.kv import Store
from shared.models import Action, utcnow
from shared.schedules import RULE_NAMES, RuleName, Rules, idle_since, last_transition, merged

log = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("5d0f3c2a-8e41-4b7e-9a56-2f1c0b9d7e63")
InvocationsFn = Callable[[str, datetime, datetime], Awaitable[float]]


class RuleRecord(BaseModel):
    """A deployment's rules as last set (`plan.<id>`), or the last transition acted on (`acted.<id>`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rules: Rules | None = None
    fields: list[RuleName] = []  # which of the rules were set (the others are the plan's own)
    set_by: str | None = None
    acted: datetime | None = None


class Keeper:
    def __init__(
        self,
        records: Store[Deployed],
        rules: Store[RuleRecord],
        publish: Publish,
        invocations: InvocationsFn | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.records, self.rules, self.publish = records, rules, publish
        self.invocations = invocations  # None in dry-run: nothing serves, so nothing is idle
        self.clock = clock

    async def on_set(self, event: ScheduleSet) -> None:
        """Keep what was set, field by field, in log order (a plan still waiting for approval has
        no record here yet: its own idle rule applies to whatever was not set)."""
        d = event.data
        before = await self.rules.get(_rules_key(event.plan_id))
        rules = merged(before.rules or Rules() if before else Rules(), d.rules, d.fields)
        fields = [name for name in RULE_NAMES if name in d.fields or (before and name in before.fields)]
        await self.rules.put(_rules_key(event.plan_id), RuleRecord(rules=rules, fields=fields, set_by=d.set_by))

    async def rules_of(self, plan_id: str, record: Deployed) -> Rules:
        """What was set for the deployment, over its plan's own idle rule (the env's default)."""
        own = Rules(idle_pause_minutes=record.config.idle_pause_minutes)
        said = await self.rules.get(_rules_key(plan_id))
        return merged(own, said.rules, said.fields) if said is not None and said.rules is not None else own

    async def check_once(self) -> list[DeploymentAction]:
        """Ask for what the schedules and idle rules want now (each at most once)."""
        now, asked = self.clock(), []
        for plan_id in await self.records.keys():
            record = await self.records.get(plan_id)
            if record is None or record.deleted:
                continue
            try:
                rules = await self.rules_of(plan_id, record)
                action = await self._scheduled(plan_id, record, rules, now) or await self._idle(
                    plan_id, record, rules, now
                )
            except Exception:  # CloudWatch away, a record unreadable: the others still get checked
                log.exception("schedule check of plan %s failed; retrying next round", plan_id)
                continue
            if action is not None:
                asked.append(action)
        return asked

    async def _scheduled(self, plan_id: str, record: Deployed, rules: Rules, now: datetime) -> DeploymentAction | None:
        """The last transition of the schedule, once: a person's pause or restart after it stands."""
        if rules.schedule is None:
            return None
        at, what = last_transition(rules.schedule, now)
        mark = f"acted.{plan_id}"
        done = await self.rules.get(mark)
        if done is not None and done.acted is not None and done.acted >= at:
            return None
        endpoint = record.config.endpoint_name
        action = None
        if what == "pause" and record.endpoint_live:
            why = f"schedule: outside {rules.schedule.describe()} (window closed {at:%Y-%m-%d %H:%M} UTC)"
            action = _ask(plan_id, Action.PAUSE, f"schedule:{endpoint}", why, f"{at.isoformat()}:pause")
        elif what == "restart" and record.paused:
            why = f"schedule: {rules.schedule.describe()} (window opened {at:%Y-%m-%d %H:%M} UTC)"
            action = _ask(plan_id, Action.RESTART, f"schedule:{endpoint}", why, f"{at.isoformat()}:restart")
        if action is not None:
            await self.publish(action)  # first: a crash before the mark asks again under the same id
        await self.rules.put(mark, RuleRecord(acted=at))
        return action

    async def _idle(self, plan_id: str, record: Deployed, rules: Rules, now: datetime) -> DeploymentAction | None:
        minutes = rules.idle_pause_minutes
        if minutes is None or self.invocations is None or not record.endpoint_live or not record.settled:
            return None
        since = idle_since(minutes, record.since, now)
        if since is None:
            return None
        endpoint = record.config.endpoint_name
        if await self.invocations(endpoint, since, now) > 0:
            return None
        why = (
            f"idle: no invocations for {minutes} minutes ({since:%Y-%m-%d %H:%M}-{now:%H:%M} UTC, "
            "CloudWatch AWS/SageMaker Invocations)"
        )
        # one pause per time in service: asking again while it is carried out is the same event
        action = _ask(plan_id, Action.PAUSE, f"idle:{endpoint}", why, f"idle:{record.since}")
        await self.publish(action)
        return action


def _ask(plan_id: str, action: Action, by: str, why: str, step: str) -> DeploymentAction:
    return DeploymentAction(
        id=uuid.uuid5(NAMESPACE, f"{plan_id}:{step}"),
        plan_id=plan_id,
        actor=by,
        data=DeploymentActionData(action=action, requested_by=by, reason=why),
    )


def _rules_key(plan_id: str) -> str:
    return f"plan.{plan_id}"


async def keep(keeper: Keeper, every: float, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            for action in await keeper.check_once():
                log.warning("%s %s: %s", action.data.action.value, action.plan_id, action.data.reason)
        except Exception:  # the broker away: the next round tries again
            log.exception("schedule check failed; retrying next round")
        await asyncio.sleep(every)
