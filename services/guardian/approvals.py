"""What the guardian decides for a plan, an approval and a lifecycle action. Pure: no I/O."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.approvals import Waiting, approvals_required, decide, plan_hash
from shared.catalog import InstanceCatalog, ModelCatalog, cheapest_fit, fits
from shared.events import (
    ApprovalDecided,
    ApprovalDecidedData,
    ApprovalRequested,
    ApprovalRequestedData,
    DeploymentAction,
    DeploymentChanged,
    DeploymentRequested,
    DeploymentRequestedData,
    DeploymentStatus,
    Event,
    PlanProposed,
    PlanRejected,
    PlanRejectedData,
    canonical_json,
    derive_event_id,
)
from shared.guardrails import Spend, check, errors, hourly_cost, instance_allowed, strategy_findings, update_strategy
from shared.models import Action, Env, Finding, SageMakerDeploymentConfig, UpdateStrategy
from shared.settings import Settings

SERVICE = "guardian"
# Expiry decisions have no causing event; their ids derive from the plan and its hash instead.
EXPIRY_NAMESPACE = uuid.UUID("2f4b9f0e-8d4c-4a57-9a0e-6a3c1f5e7b21")


Change = Literal["restart", "scale", "update", "rollback"]


class PendingChange(BaseModel):
    """A restart, scale, update or rollback of a live deployment waiting for approval, like a new
    plan would."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    operation: Change
    config: SageMakerDeploymentConfig
    plan_hash: str
    approvals_required: int
    requested_by: str
    expires_at: datetime
    approved_by: tuple[str, ...] = ()
    requested_at: datetime | None = None  # None on records older than the field
    strategy: UpdateStrategy | None = None  # update and rollback


class Updating(BaseModel):
    """An update or rollback the executor is carrying out: what ran before it, and the request
    whose status events end it (deployed: it took; rolled_back or failed: the old one runs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    operation: Literal["update", "rollback"]
    before: SageMakerDeploymentConfig
    request_id: uuid.UUID


class GuardedPlan(BaseModel):
    """The guardian's own record of a plan it validated (kept in its KV bucket)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    plan_id: str
    env: Env
    intent: str
    model_id: str
    requested_by: str
    config: SageMakerDeploymentConfig
    state: Literal["pending_approval", "approved", "rejected", "expired"]
    expires_at: datetime | None = None
    # when the approval request was made (time to decision); None on records older than the field
    requested_at: datetime | None = None
    plan_hash: str = ""
    approvals_required: int = 1
    approved_by: tuple[str, ...] = ()
    # set while a restart, scale, update or rollback of this (live) plan waits for its approvers
    change: PendingChange | None = None
    # the configurations updates replaced, oldest first: a rollback returns to the last one
    previous: tuple[SageMakerDeploymentConfig, ...] = ()
    updating: Updating | None = None

    @property
    def waiting(self) -> bool:
        return self.state == "pending_approval" or self.change is not None


class EndpointOwner(BaseModel):
    """Which plan an endpoint (app + env) belongs to: the guardian's claim, made when it passes
    a plan (or asks for its approval), freed when that plan is deleted or has ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    endpoint: str
    plan_id: str


# A plan in one of these states holds no endpoint: it never deployed, or is gone.
ENDED = {"validation_failed", "rejected", "failed", "deleted", "expired"}


def endpoint_taken(endpoint: str, owner: str, owner_status: str | None) -> Finding:
    """One live plan per endpoint: a second deploy of the same app in the same env is refused,
    naming the plan that has it and how to change that one instead."""
    state = f" ({owner_status})" if owner_status else ""
    return Finding(
        code="ENDPOINT_TAKEN",
        message=f"{endpoint} already belongs to plan {owner}{state}: change that plan instead "
        f"(POST /api/deployments/{owner}/update, or say 'update <app> to <model>'; /scale, /pause, "
        "/restart), or delete it first "
        f"(DELETE /api/deployments/{owner}) and deploy again",
    )


class Policy:
    def __init__(self, models: ModelCatalog, instances: InstanceCatalog, settings: Settings) -> None:
        self.models, self.instances, self.settings = models, instances, settings

    def findings(
        self, plan: GuardedPlan, config: SageMakerDeploymentConfig | None = None, spend: Spend | None = None
    ) -> list[Finding]:
        config = config or plan.config
        model_id = config.model_name if config.model_name != plan.config.model_name else plan.model_id
        return check(config, plan.env, model_id, self.models, self.instances, self.settings, spend)

    def approvals_required(self, env: Env, usd_per_hour: float) -> int:
        return approvals_required(env, usd_per_hour, self.settings)


Outcome = tuple[list[Event], GuardedPlan | None]


def on_plan(
    event: PlanProposed,
    policy: Policy,
    now: datetime,
    spend: Spend | None = None,
    taken: Finding | None = None,
    budget: list[Finding] | None = None,
) -> Outcome:
    """`budget`: why a budget of the plan's env or app refuses more spending now (BUDGET_BLOCKED)."""
    d = event.data
    plan = GuardedPlan(
        plan_id=event.plan_id,
        env=d.env,
        intent=d.intent,
        model_id=d.model_id,
        requested_by=d.user_id,
        config=d.config,
        state="approved",
        plan_hash=plan_hash(d.env, d.model_id, d.config),
    )
    findings = ([taken] if taken else []) + (budget or []) + policy.findings(plan, spend=spend)
    if errors(findings):
        return [rejected(event, findings, "deploy")], None
    cost = hourly_cost(d.config, policy.instances) or 0.0
    required = policy.approvals_required(d.env, cost)
    if required:
        expires = now + timedelta(hours=policy.settings.approval_ttl_hours)
        request = ApprovalRequestedData(
            intent=d.intent,
            env=d.env,
            requested_by=d.user_id,
            config=d.config,
            estimated_usd_per_hour=cost,
            expires_at=expires,
            warnings=findings,
            evidence=d.evidence,
            plan_hash=plan.plan_hash,
            approvals_required=required,
        )
        pending = plan.model_copy(
            update={
                "state": "pending_approval",
                "expires_at": expires,
                "requested_at": now,
                "approvals_required": required,
            }
        )
        return [event.caused(ApprovalRequested, "approval", SERVICE, request)], pending
    return [_requested(event, plan, "deploy", cost, findings)], plan


def on_decision(
    event: ApprovalDecided,
    plan: GuardedPlan | None,
    policy: Policy,
    spend: Spend | None = None,
    budget: list[Finding] | None = None,
) -> Outcome:
    """A decision, judged by the shared rule (shared/approvals.py) at the time it was taken.
    `budget`: a budget that blocks more spending now refuses what the approval would start."""
    if plan is not None and plan.state == "approved" and plan.change is not None:
        return _on_change_decision(event, plan, plan.change, policy, spend, budget)
    if plan is None or plan.state != "pending_approval" or plan.expires_at is None:
        return [], None  # a repeat, or a decision on something that is not waiting
    outcome, counted = decide(Waiting.of(plan, plan.expires_at, plan.approved_by), event.data, event.occurred_at)
    if outcome == "ignored":
        return [], None
    if outcome == "expired":
        said: list[Event] = [] if event.data.decision == "expired" else [expire(plan, event)]
        return said, plan.model_copy(update={"state": "expired"})
    if outcome == "rejected":
        return [], plan.model_copy(update={"state": "rejected"})
    if outcome == "counted":
        return [], plan.model_copy(update={"approved_by": counted.approved_by})
    # prices, limits, spend and budgets may have moved since the request
    findings = (budget or []) + policy.findings(plan, spend=spend)
    if errors(findings):
        return [rejected(event, findings, "approve")], plan.model_copy(update={"state": "rejected"})
    cost = hourly_cost(plan.config, policy.instances) or 0.0
    # One deployment per approved request, whichever decision completed it: the id comes from the
    # request, so a second approval that slips in while this one is being retried (seen under
    # outages) is the same event, dropped as a duplicate, not a second CreateEndpoint.
    deploy = _requested(event, plan, "deploy", cost)
    deploy = deploy.model_copy(
        update={"id": derive_event_id(EXPIRY_NAMESPACE, f"{plan.plan_id}:{plan.plan_hash}:approved")}
    )
    return [deploy], plan.model_copy(update={"state": "approved", "approved_by": counted.approved_by})


def _on_change_decision(
    event: ApprovalDecided,
    plan: GuardedPlan,
    change: PendingChange,
    policy: Policy,
    spend: Spend | None,
    budget: list[Finding] | None = None,
) -> Outcome:
    """The same rule as for a new plan, applied to the change's own request and hash."""
    outcome, counted = decide(Waiting.of(change, change.expires_at, change.approved_by), event.data, event.occurred_at)
    cleared = plan.model_copy(update={"change": None})
    if outcome == "ignored":
        return [], None
    if outcome == "expired":
        return ([] if event.data.decision == "expired" else [expire(plan, event)]), cleared
    if outcome == "rejected":
        return [], cleared
    if outcome == "counted":
        return [], plan.model_copy(update={"change": change.model_copy(update={"approved_by": counted.approved_by})})
    spends_more = change.operation == "restart" or (hourly_cost(change.config, policy.instances) or 0.0) > (
        hourly_cost(plan.config, policy.instances) or 0.0
    )
    findings = (budget or [] if spends_more else []) + policy.findings(plan, change.config, spend)
    if errors(findings):  # the live plan stays as it is; only the change is refused
        return [rejected(event, findings, change.operation)], cleared
    request_id = derive_event_id(EXPIRY_NAMESPACE, f"{plan.plan_id}:{change.plan_hash}:change-approved")
    updated = _changed(cleared, change.operation, change.config, request_id)
    cost = hourly_cost(change.config, policy.instances) or 0.0
    deploy = _requested(event, updated, change.operation, cost, before=plan, strategy=change.strategy, policy=policy)
    return [deploy.model_copy(update={"id": request_id})], updated


def _changed(
    plan: GuardedPlan, operation: Change, config: SageMakerDeploymentConfig, request_id: uuid.UUID
) -> GuardedPlan:
    """The record once `operation` to `config` is requested of the executor."""
    update: dict[str, object] = {
        "config": config,
        "model_id": config.model_name,
        "plan_hash": plan_hash(plan.env, config.model_name, config),
        "change": None,
    }
    if operation in ("update", "rollback"):
        update["updating"] = Updating(operation=operation, before=plan.config, request_id=request_id)  # type: ignore[arg-type]
    return plan.model_copy(update=update)


def on_status(event: DeploymentStatus | DeploymentChanged, plan: GuardedPlan | None) -> GuardedPlan | None:
    """How an update or rollback ended, from the executor's status events for its request: the
    record then holds what the endpoint serves, and which configurations a rollback can return
    to. None: nothing to change."""
    if plan is None or plan.updating is None:
        return None
    u, status = plan.updating, event.data.status
    if status in ("paused", "deleted"):  # stopped (by anyone) before the update ended: it never took
        return _serving(plan, u.before)
    if event.causation_id != u.request_id:
        return None
    if status == "deployed":
        previous = (*plan.previous, u.before) if u.operation == "update" else plan.previous[:-1]
        return plan.model_copy(update={"updating": None, "previous": previous[-MAX_HISTORY:]})
    if status in ("rolled_back", "failed"):
        return _serving(plan, event.data.config or u.before)
    return None


def _serving(plan: GuardedPlan, config: SageMakerDeploymentConfig) -> GuardedPlan:
    update = {"updating": None, "config": config, "model_id": config.model_name}
    return plan.model_copy(update={**update, "plan_hash": plan_hash(plan.env, config.model_name, config)})


MAX_HISTORY = 20  # configurations a rollback can go back through


def on_update(
    event: DeploymentAction,
    plan: GuardedPlan,
    policy: Policy,
    spend: Spend | None,
    now: datetime,
    budget: list[Finding] | None = None,
) -> Outcome:
    """An update (new model, instance type or count) or a rollback to the configuration the last
    update replaced: checked like a new plan, held for approvers like one (bound to the new
    configuration's hash), and carried out by the executor as a SageMaker blue/green update."""
    d = event.data
    operation: Literal["update", "rollback"] = "update" if d.action is Action.UPDATE else "rollback"
    if plan.updating is not None or plan.change is not None:
        busy = plan.updating.operation if plan.updating else f"{plan.change.operation} waiting for approval"  # type: ignore[union-attr]
        why = Finding(
            code="UPDATE_IN_PROGRESS",
            message=f"{plan.config.endpoint_name} has a {busy} in progress: wait for it to finish, then try again",
        )
        return [rejected(event, [why], operation)], None
    if operation == "rollback":
        if not plan.previous:
            why = Finding(
                code="NO_PREVIOUS_CONFIG",
                message=f"{plan.config.endpoint_name} has had no other configuration to roll back to",
            )
            return [rejected(event, [why], operation)], None
        config = plan.previous[-1]
    else:
        made = _update_config(plan, d.model_id, d.instance_type, d.instance_count, policy)
        if isinstance(made, Finding):
            return [rejected(event, [made], operation)], None
        config = made
    if _same(config, plan.config):
        why = Finding(code="NOTHING_TO_CHANGE", message=f"{plan.config.endpoint_name} already runs that configuration")
        return [rejected(event, [why], operation)], None
    strategy = d.strategy or update_strategy(plan.env, policy.settings)
    costlier = (hourly_cost(config, policy.instances) or 0.0) > (hourly_cost(plan.config, policy.instances) or 0.0)
    findings = (budget or [] if costlier else []) + policy.findings(plan, config, spend) + strategy_findings(strategy)
    if errors(findings):
        return [rejected(event, findings, operation)], None
    return _hold_or_request(event, plan, operation, config, findings, policy, now, strategy)


def _hold_or_request(
    event: DeploymentAction,
    plan: GuardedPlan,
    operation: Change,
    config: SageMakerDeploymentConfig,
    findings: list[Finding],
    policy: Policy,
    now: datetime,
    strategy: UpdateStrategy | None = None,
) -> Outcome:
    """A change of a live plan that passed the checks: held for one or two approvers bound to the
    new configuration (and strategy) in prod or above the thresholds, else requested at once."""
    config = SageMakerDeploymentConfig.model_validate(config.model_dump())
    cost = hourly_cost(config, policy.instances) or 0.0
    required = policy.approvals_required(plan.env, cost)
    requested_by = event.data.requested_by
    if not required:
        target = plan.model_copy(update={"config": config, "model_id": config.model_name})
        requested = _requested(event, target, operation, cost, findings, before=plan, strategy=strategy, policy=policy)
        return [requested], _changed(plan, operation, config, requested.id)
    expires = now + timedelta(hours=policy.settings.approval_ttl_hours)
    target = plan.model_copy(update={"model_id": config.model_name})
    change = PendingChange(
        operation=operation,
        config=config,
        plan_hash=change_hash(target, operation, config, requested_by, expires, strategy),
        approvals_required=required,
        requested_by=requested_by,
        requested_at=now,
        expires_at=expires,
        strategy=strategy,
    )
    request = ApprovalRequestedData(
        intent=f"{operation} {config.endpoint_name}: {plan.intent}"[:1000],
        env=plan.env,
        requested_by=requested_by,
        config=config,
        estimated_usd_per_hour=cost,
        expires_at=expires,
        warnings=findings,
        plan_hash=change.plan_hash,
        approvals_required=required,
        operation=operation,
        previous=plan.config,
        strategy=strategy,
        previous_usd_per_hour=hourly_cost(plan.config, policy.instances),
    )
    return [event.caused(ApprovalRequested, "approval", SERVICE, request)], plan.model_copy(update={"change": change})


def _same(a: SageMakerDeploymentConfig, b: SageMakerDeploymentConfig) -> bool:
    keys = ("model_name", "instance_type", "instance_count")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def _update_config(
    plan: GuardedPlan, model_id: str | None, instance_type: str | None, count: int | None, policy: Policy
) -> SageMakerDeploymentConfig | Finding:
    """The live configuration with what the update changes. A new model that the current
    instance type cannot hold moves to the cheapest one the env allows that can, as a new plan
    would be sized."""
    model = policy.models.get(model_id or plan.model_id)
    if model is None:
        return Finding(code="UNKNOWN_MODEL", message=f"model {model_id!r} is not in the catalog: name a catalog model")
    if instance_type is None:
        instance_type = plan.config.instance_type
        current = policy.instances.get(instance_type)
        if model.id != plan.model_id and (current is None or not fits(model, current)):
            chosen = cheapest_fit(model, policy.instances, lambda n: instance_allowed(n, plan.env, policy.settings))
            instance_type = chosen.name if chosen else instance_type  # none fits: the GPU check says so
    fields = {
        **plan.config.model_dump(),
        "model_name": model.id,
        "instance_type": instance_type,
        "instance_count": count or plan.config.instance_count,
    }
    return SageMakerDeploymentConfig.model_construct(**fields)


def expire(plan: GuardedPlan, cause: Event | None = None) -> ApprovalDecided:
    """The guardian's own decision on a request nobody decided in time."""
    expires_at, plan_hash = (
        (plan.change.expires_at, plan.change.plan_hash)
        if plan.change
        else (
            plan.expires_at,
            plan.plan_hash,
        )
    )
    data = ApprovalDecidedData(
        decision="expired",
        approver=SERVICE,
        reason=f"nobody decided before {expires_at.isoformat() if expires_at else 'the expiry'}",
        plan_hash=plan_hash,
    )
    if cause is not None:
        return cause.caused(ApprovalDecided, "expired", SERVICE, data)
    return ApprovalDecided(
        id=derive_event_id(EXPIRY_NAMESPACE, f"{plan.plan_id}:{plan_hash}:expired"),
        plan_id=plan.plan_id,
        actor=SERVICE,
        data=data,
    )


def due_for_expiry(plan: GuardedPlan, now: datetime) -> bool:
    if plan.change is not None:
        return now > plan.change.expires_at
    return plan.state == "pending_approval" and plan.expires_at is not None and now > plan.expires_at


def on_action(
    event: DeploymentAction,
    plan: GuardedPlan | None,
    policy: Policy,
    spend: Spend | None = None,
    now: datetime | None = None,
    budget: list[Finding] | None = None,
) -> Outcome:
    """Restart and scale spend money again, so they pass the same rules as a new plan: validated
    again, and in prod or above the cost thresholds held for one or two approvers bound to the new
    configuration's hash. Pause and delete only reduce spend and are not ours."""
    action = event.data.action
    if action in (Action.UPDATE, Action.ROLLBACK) and plan is not None and plan.state == "approved":
        return on_update(event, plan, policy, spend, now or event.occurred_at, budget)
    if action not in (Action.RESTART, Action.SCALE) or plan is None or plan.state != "approved":
        return [], None
    if plan.updating is not None:  # SageMaker takes one change of an endpoint at a time
        why = Finding(
            code="UPDATE_IN_PROGRESS",
            message=f"{plan.config.endpoint_name} has an {plan.updating.operation} in progress: wait for it to finish",
        )
        return [rejected(event, [why], "restart" if action is Action.RESTART else "scale")], None
    config = plan.config
    if action is Action.SCALE:
        count = event.data.instance_count or config.instance_count
        config = SageMakerDeploymentConfig.model_construct(**{**config.model_dump(), "instance_count": count})
    scaling_up = action is Action.SCALE and config.instance_count > plan.config.instance_count
    spends_more = action is Action.RESTART or scaling_up
    findings = (budget or [] if spends_more else []) + policy.findings(plan, config, spend if spends_more else None)
    operation: Literal["restart", "scale"] = "restart" if action is Action.RESTART else "scale"
    if errors(findings):
        return [rejected(event, findings, operation)], None
    return _hold_or_request(event, plan, operation, config, findings, policy, now or event.occurred_at)


def change_hash(
    plan: GuardedPlan,
    operation: str,
    config: SageMakerDeploymentConfig,
    requested_by: str,
    expires_at: datetime,
    strategy: UpdateStrategy | None = None,
) -> str:
    """What an approver of a change approves: the operation, the new configuration (and, for an
    update, how traffic moves to it) and the request it answers (a second restart request is a
    new decision, not the old one's repeat)."""
    content: dict[str, object] = {
        "operation": operation,
        "plan": plan_hash(plan.env, plan.model_id, config),
        "requested_by": requested_by,
        "expires_at": expires_at.isoformat(),
    }
    if strategy is not None:
        content["strategy"] = strategy.model_dump(mode="json")
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def rejected(cause: Event, findings: list[Finding], operation: Change | Literal["deploy", "approve"]) -> PlanRejected:
    data = PlanRejectedData(
        errors=errors(findings), warnings=[f for f in findings if f.severity == "warning"], operation=operation
    )
    return cause.caused(PlanRejected, "rejected", SERVICE, data)


def _requested(
    cause: Event,
    plan: GuardedPlan,
    operation: Change | Literal["deploy"],
    cost: float,
    warnings: list[Finding] | None = None,
    before: GuardedPlan | None = None,
    strategy: UpdateStrategy | None = None,
    policy: Policy | None = None,
) -> DeploymentRequested:
    changing = operation in ("update", "rollback") and before is not None
    data = DeploymentRequestedData(
        operation=operation,
        env=plan.env,
        config=plan.config,
        estimated_usd_per_hour=cost,
        warnings=[f for f in warnings or [] if f.severity == "warning"],
        previous=before.config if changing and before else None,
        previous_usd_per_hour=hourly_cost(before.config, policy.instances) if changing and before and policy else None,
        strategy=strategy if changing else None,
    )
    return cause.caused(DeploymentRequested, "requested", SERVICE, data)
