"""Turning the fold's rows (shared/readmodels.py) into API bodies."""

from __future__ import annotations

from typing import Literal

from services.gateway.schemas import (
    ActiveDeployment,
    ActiveDeployments,
    Approval,
    CommandResponse,
    CommandResult,
    DeploymentDetail,
    PendingApproval,
    PendingApprovals,
    PlanWithDetails,
)
from shared.events import Event, IntentReceived
from shared.fold import fold_plan
from shared.models import ALLOWED_ACTIONS, DeploymentPlan, PlanStatus
from shared.readmodels import ApprovalRow, PlanRow

FAILED = (PlanStatus.VALIDATION_FAILED, PlanStatus.REJECTED)


def plan(row: PlanRow, cost_usd: float | None = None) -> DeploymentPlan:
    return DeploymentPlan(
        plan_id=row.plan_id,
        status=row.status,
        user_id=row.user_id,
        intent=row.intent,
        env=row.env,
        artifact=row.artifact,
        evidence=row.evidence,
        created_at=row.created_at,
        updated_at=row.updated_at,
        validation_errors=row.validation_errors,
        cost_usd=cost_usd,
        reason=row.details.reason if row.status is PlanStatus.FAILED else None,
        allowed_actions=sorted((a for a, allowed in ALLOWED_ACTIONS.items() if row.status in allowed), key=str),
    )


def plan_detail(row: PlanRow) -> DeploymentDetail:
    with_details = PlanWithDetails(**plan(row).model_dump(), details=row.details)
    return DeploymentDetail(plan=with_details, approval=row.details.approval)


def command_response(command_id: str, intent: IntentReceived, decided: Event | None) -> CommandResponse:
    """The answer to a command: the plan as the one fold makes it from the intent and the event
    that decided it (the projection may trail that event by milliseconds)."""
    row = fold_plan(None, intent)
    assert row is not None
    if decided is not None:
        row = fold_plan(row, decided) or row
    current = plan(row)
    requires_approval = row.status is PlanStatus.PENDING_APPROVAL
    result = CommandResult(
        plan_id=row.plan_id,
        status=row.status,
        artifact=row.artifact,
        requires_approval=requires_approval,
        errors=row.validation_errors,
    )
    status: Literal["success", "validation_failed", "accepted"] = (
        "accepted" if decided is None else "validation_failed" if row.status in FAILED else "success"
    )
    return CommandResponse(
        command_id=command_id,
        status=status,
        result=result,
        error=_message(row) if status == "validation_failed" else None,
        plan_id=row.plan_id,
        message=_message(row),
        requires_approval=requires_approval,
        plan=current,
        validation_errors=row.validation_errors,
    )


def _message(row: PlanRow) -> str:
    endpoint = row.artifact.endpoint_name if row.artifact else None
    if row.status is PlanStatus.PLANNING:
        return f"accepted; the plan is still being prepared: follow it at /api/deployments/{row.plan_id}"
    if row.status is PlanStatus.VALIDATION_FAILED and row.details.findings:
        return "the plan failed its guardrails"
    if row.status in FAILED:
        return "; ".join(row.validation_errors) or f"the plan is {row.status.value}"
    if row.status is PlanStatus.PENDING_APPROVAL:
        return f"{endpoint} requires approval before it deploys to {row.env.value}"
    return f"{endpoint} is {row.status.value} to {row.env.value}"


def approval(row: ApprovalRow, intent: str) -> Approval:
    request = row.request
    return Approval(
        plan_id=row.plan_id,
        intent=intent,
        env=request.env,
        requested_by=row.requested_by,
        requested_at=row.requested_at.isoformat(),
        expires_at=row.expires_at.isoformat(),
        estimated_usd_per_hour=request.estimated_usd_per_hour,
        artifact=request.config,
        warnings=request.warnings,
        evidence=request.evidence,
        plan_hash=request.plan_hash,
        approvals_required=request.approvals_required,
        approvers=row.approvers,
        operation=request.operation,
        previous=request.previous,
    )


def active(rows: list[PlanRow]) -> ActiveDeployments:
    return ActiveDeployments(
        count=len(rows),
        deployments=[
            ActiveDeployment(
                plan_id=r.plan_id,
                endpoint_name=r.artifact.endpoint_name if r.artifact else None,
                status=r.status,
                environment=r.env,
                instance_type=r.artifact.instance_type if r.artifact else None,
            )
            for r in rows
        ],
    )


def pending(rows: list[tuple[ApprovalRow, str]]) -> PendingApprovals:
    items = [
        PendingApproval(plan_id=a.plan_id, plan=a, created_at=a.requested_at)
        for a in (approval(row, intent) for row, intent in rows)
    ]
    return PendingApprovals(count=len(items), approvals=items)


def replayed(command_id: str, plan_id: str, row: PlanRow | None) -> CommandResponse:
    """The answer to a retried command (same Idempotency-Key): the first plan as it stands now."""
    current = plan(row) if row else None
    status = row.status if row else PlanStatus.PLANNING
    errors = row.validation_errors if row else []
    failed = status in FAILED
    outcome: Literal["success", "validation_failed", "accepted"] = (
        "accepted" if status is PlanStatus.PLANNING else "validation_failed" if failed else "success"
    )
    return CommandResponse(
        command_id=command_id,
        status=outcome,
        result=CommandResult(
            plan_id=plan_id,
            status=status,
            artifact=row.artifact if row else None,
            requires_approval=status is PlanStatus.PENDING_APPROVAL,
            errors=errors,
        ),
        error="; ".join(errors) if failed else None,
        plan_id=plan_id,
        message=f"a retry of an earlier command: plan {plan_id} is {status.value}",
        requires_approval=status is PlanStatus.PENDING_APPROVAL,
        plan=current,
        validation_errors=errors,
    )
