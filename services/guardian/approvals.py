"""What the guardian decides for a plan, an approval and a lifecycle action. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.guardian.guardrails import check, errors, hourly_cost
from shared.catalog import InstanceCatalog, ModelCatalog
from shared.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalRequestedData,
    DeploymentAction,
    DeploymentRequested,
    DeploymentRequestedData,
    Event,
    PlanProposed,
    PlanRejected,
    PlanRejectedData,
)
from shared.models import Action, Env, Finding, SageMakerDeploymentConfig
from shared.settings import Settings

SERVICE = "guardian"


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


class Policy:
    def __init__(self, models: ModelCatalog, instances: InstanceCatalog, settings: Settings) -> None:
        self.models, self.instances, self.settings = models, instances, settings

    def findings(self, plan: GuardedPlan, config: SageMakerDeploymentConfig | None = None) -> list[Finding]:
        return check(config or plan.config, plan.env, plan.model_id, self.models, self.instances, self.settings)

    def needs_approval(self, env: Env) -> bool:
        return env is Env.PROD


Outcome = tuple[list[Event], GuardedPlan | None]


def on_plan(event: PlanProposed, policy: Policy, now: datetime) -> Outcome:
    d = event.data
    plan = GuardedPlan(
        plan_id=event.plan_id,
        env=d.env,
        intent=d.intent,
        model_id=d.model_id,
        requested_by=d.user_id,
        config=d.config,
        state="approved",
    )
    findings = policy.findings(plan)
    if errors(findings):
        return [_rejected(event, findings, "deploy")], None
    cost = hourly_cost(d.config, policy.instances) or 0.0
    if policy.needs_approval(d.env):
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
        )
        pending = plan.model_copy(update={"state": "pending_approval", "expires_at": expires})
        return [event.caused(ApprovalRequested, "approval", SERVICE, request)], pending
    return [_requested(event, plan, "deploy", cost)], plan


def on_decision(event: ApprovalDecided, plan: GuardedPlan | None, policy: Policy, now: datetime) -> Outcome:
    if plan is None or plan.state != "pending_approval":
        return [], None  # a repeat, or a decision on something that is not waiting
    if event.data.approver == plan.requested_by:
        return [], None  # the gateway refuses self-approval; never honour one that slipped through
    if event.data.decision == "rejected":
        return [], plan.model_copy(update={"state": "rejected"})
    if plan.expires_at is not None and now > plan.expires_at:
        expired = Finding(
            code="APPROVAL_EXPIRED",
            message=f"the approval request expired at {plan.expires_at.isoformat()}: submit the command again",
        )
        return [_rejected(event, [expired], "approve")], plan.model_copy(update={"state": "expired"})
    findings = policy.findings(plan)  # prices, limits and policy may have moved since the request
    if errors(findings):
        return [_rejected(event, findings, "approve")], plan.model_copy(update={"state": "rejected"})
    cost = hourly_cost(plan.config, policy.instances) or 0.0
    return [_requested(event, plan, "deploy", cost)], plan.model_copy(update={"state": "approved"})


def on_action(event: DeploymentAction, plan: GuardedPlan | None, policy: Policy) -> Outcome:
    """Restart and scale spend money again, so they are validated again; pause and delete are not ours."""
    action = event.data.action
    if action not in (Action.RESTART, Action.SCALE) or plan is None or plan.state != "approved":
        return [], None
    config = plan.config
    if action is Action.SCALE:
        count = event.data.instance_count or config.instance_count
        if count > policy.settings.max_instance_count:
            limit = policy.settings.max_instance_count
            over = Finding(
                code="INSTANCE_COUNT_OVER_LIMIT",
                message=f"instance_count {count} is over the limit of {limit} for {plan.env.value}",
            )
            return [_rejected(event, [over], "scale")], None
        config = config.model_copy(update={"instance_count": count})
    findings = policy.findings(plan, config)
    operation: Literal["restart", "scale"] = "restart" if action is Action.RESTART else "scale"
    if errors(findings):
        return [_rejected(event, findings, operation)], None
    updated = plan.model_copy(update={"config": config})
    return [_requested(event, updated, operation, hourly_cost(config, policy.instances) or 0.0)], updated


def _rejected(
    cause: Event, findings: list[Finding], operation: Literal["deploy", "restart", "scale", "approve"]
) -> PlanRejected:
    data = PlanRejectedData(
        errors=errors(findings), warnings=[f for f in findings if f.severity == "warning"], operation=operation
    )
    return cause.caused(PlanRejected, "rejected", SERVICE, data)


def _requested(
    cause: Event, plan: GuardedPlan, operation: Literal["deploy", "restart", "scale"], cost: float
) -> DeploymentRequested:
    data = DeploymentRequestedData(operation=operation, env=plan.env, config=plan.config, estimated_usd_per_hour=cost)
    return cause.caused(DeploymentRequested, "requested", SERVICE, data)
