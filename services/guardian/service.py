"""The guardian as a class with ports: its records (two stores), a publisher, the policy, the
month's spend and a clock. One method per event it consumes, and `sweep_once` for expiries.
The decisions themselves are the pure functions of services/guardian/approvals.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.guardian.approvals import (
    ENDED,
    EndpointOwner,
    GuardedPlan,
    Outcome,
    Policy,
    due_for_expiry,
    endpoint_taken,
    expire,
    on_action,
    on_decision,
    on_plan,
    on_status,
    rejected,
)
from services.guardian.budgeting import Budgets
from shared.budgets import app_of
from shared.bus import Publish
from shared.events import ApprovalDecided, DeploymentAction, DeploymentChanged, PlanProposed
from shared.guardrails import Spend
from shared.hub import Hub, HubError
from shared.kv import MemoryStore, Store
from shared.models import Action, Env, Finding, utcnow

log = logging.getLogger(__name__)
SpendFn = Callable[[], Awaitable[Spend]]
StatusFn = Callable[[str], Awaitable[str | None]]
Clock = Callable[[], datetime]
DECISION_WAIT_DELIVERIES = 30  # about half a minute of redeliveries before a decision is dropped


class WaitingForRecord(RuntimeError):
    """A decision arrived before the record of the request it decides: retry it later."""


class Guardian:
    def __init__(
        self,
        plans: Store[GuardedPlan],
        pending: Store[GuardedPlan],
        publish: Publish,
        policy: Policy,
        spend: SpendFn | None = None,
        clock: Clock = utcnow,
        decided: Callable[[str, float], None] = lambda decision, seconds: None,
        owners: Store[EndpointOwner] | None = None,
        status_of: StatusFn | None = None,
        hub: Hub | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        # `pending` holds only the plans waiting for a decision, so the expiry sweep reads those
        # and not every plan ever validated.
        self.plans, self.pending, self.publish, self.policy = plans, pending, publish, policy
        self.spend, self.clock, self.decided = spend, clock, decided
        # endpoint -> the plan that has it; `status_of` reads a plan's status in the read model
        self.owners: Store[EndpointOwner] = owners if owners is not None else MemoryStore()
        self.status_of = status_of
        self._claims = asyncio.Lock()  # plans are handled concurrently; claims one at a time
        self.hub = hub  # sizes a Hugging Face model the catalog lacks, as the planner did
        self.budgets = budgets  # monthly budgets per env and app; a blocking one refuses more spend

    async def _budget(self, env: Env, endpoint: str) -> list[Finding]:
        return await self.budgets.blocking(env, app_of(endpoint, env.value)) if self.budgets else []

    async def _unknown(self, model_id: str | None) -> Finding | None:
        """Why a model outside the catalog cannot be checked (the Hub cannot describe it); None
        when it is known (the catalog's, or sized from the Hub and remembered)."""
        if self.hub is None or not model_id:
            return None
        try:
            await self.hub.spec(model_id)
        except HubError as exc:
            return Finding(code="UNKNOWN_MODEL", message=str(exc))
        return None

    async def on_proposed(self, event: PlanProposed) -> None:
        spend, endpoint = await self._month(), event.data.config.endpoint_name
        unknown = await self._unknown(event.data.model_id)
        budget = await self._budget(event.data.env, endpoint)
        owner, now = EndpointOwner(endpoint=endpoint, plan_id=event.plan_id), self.clock()
        async with self._claims:
            # An endpoint nobody ever held (or one released) is claimed in the one write that
            # checks it is free: a plan that passes then costs no read of the owner first.
            outcome = on_plan(event, self.policy, now, spend, unknown, budget)
            if outcome[1] is None or not await self.owners.claim(endpoint, owner):
                # refused anyway, or the endpoint has an owner: judged as always, held or not
                taken = await self._taken(endpoint, event.plan_id)
                outcome = on_plan(event, self.policy, now, spend, taken or unknown, budget)
                if outcome[1] is not None:  # passed, or waiting for approval: the endpoint is this plan's
                    await self.owners.put(endpoint, owner)
        await self._settle(event.plan_id, outcome)

    async def _taken(self, endpoint: str, plan_id: str) -> Finding | None:
        """Why `plan_id` may not have `endpoint` (another plan that has not ended holds it)."""
        owner = await self.owners.get(endpoint)
        if owner is None or owner.plan_id == plan_id:
            return None
        record = await self.plans.get(owner.plan_id)
        if record is not None and record.state in ENDED:  # rejected or expired before it deployed
            return None
        status = await self.status_of(owner.plan_id) if self.status_of else None
        if status in ENDED:
            return None
        return endpoint_taken(endpoint, owner.plan_id, status)

    async def on_decided(self, event: ApprovalDecided, deliveries: int = 1) -> None:
        plan = await self.plans.get(event.plan_id)
        if plan is None and deliveries < DECISION_WAIT_DELIVERIES:
            # The request this decides was published, so its record is coming: the handler that
            # published it failed before storing it and is being retried. Dropping the decision
            # here lost approvals under outages; wait for the record instead (redelivered).
            raise WaitingForRecord(f"no record of plan {event.plan_id} yet; retrying the decision")
        budget = await self._budget(plan.env, plan.config.endpoint_name) if plan is not None else []
        outcome = on_decision(event, plan, self.policy, await self._month(), budget)
        await self._settle(event.plan_id, outcome)
        if (waited := time_to_decision(plan, outcome[1], event)) is not None:
            self.decided(event.data.decision, waited)

    async def on_action(self, event: DeploymentAction) -> None:
        plan = await self.plans.get(event.plan_id)
        if (unknown := await self._unknown(event.data.model_id)) is not None:
            await self.publish(rejected(event, [unknown], event.data.action.value))  # type: ignore[arg-type]
            return
        budget = await self._budget(plan.env, plan.config.endpoint_name) if plan is not None else []
        outcome = on_action(event, plan, self.policy, await self._month(), self.clock(), budget)
        await self._settle(event.plan_id, outcome)
        if plan is not None and event.data.action is Action.DELETE:
            endpoint = plan.config.endpoint_name
            async with self._claims:
                owner = await self.owners.get(endpoint)
                if owner is not None and owner.plan_id == event.plan_id:
                    await self.owners.delete(endpoint)

    async def on_status(self, event: DeploymentChanged) -> None:
        """The end of an update or rollback it asked for, or a stop: what the endpoint serves now."""
        record = on_status(event, await self.plans.get(event.plan_id))
        if record is not None:
            await self.plans.put(event.plan_id, record)

    async def index_pending(self) -> None:
        """Index what an older version left waiting without the index (once per start)."""
        for key in await self.plans.keys():
            plan = await self.plans.get(key)
            if plan is not None and plan.waiting:
                await self.pending.put(key, plan)

    async def sweep_once(self) -> int:
        """Requests nobody decided in time are given an `expired` decision, even if no late
        approval ever arrives. Returns how many. The record changes when that decision comes back
        in stream order, like anyone's: the log's fold and this record then agree on which came
        first, an approval taken in time or the expiry. (The id derives from the request, so a
        request seen again next round is the same event, dropped as a duplicate.)"""
        now, expired = self.clock(), 0
        for key in await self.pending.keys():
            plan = await self.plans.get(key)
            if plan is None or not plan.waiting:
                await self.pending.delete(key)
            elif due_for_expiry(plan, now):
                await self._settle(key, ([expire(plan)], None))
                expired += 1
        return expired

    async def _month(self) -> Spend | None:
        return await self.spend() if self.spend else None

    async def _settle(self, plan_id: str, outcome: Outcome) -> None:
        events, record = outcome
        for event in events:  # publish first: a crash before the put is redelivered and deduplicated
            await self.publish(event)
        if record is not None:
            await self.plans.put(plan_id, record)
            if record.waiting:
                await self.pending.put(plan_id, record)
            elif record.expires_at is not None:  # it went through approval: no longer waiting
                await self.pending.delete(plan_id)


def time_to_decision(before: GuardedPlan | None, after: GuardedPlan | None, event: ApprovalDecided) -> float | None:
    """Seconds from an approval request to the decision that ended it (approved by the last
    approver needed, rejected, expired), judged at the decision's own time; None when `event`
    ended nothing (one approval of two, a duplicate, a decision for nothing waiting)."""
    if before is None or after is None:
        return None
    if before.change is not None and after.change is None:
        requested = before.change.requested_at
    elif before.state == "pending_approval" and after.state != "pending_approval":
        requested = before.requested_at
    else:
        return None
    return None if requested is None else max(0.0, (event.occurred_at - requested).total_seconds())
