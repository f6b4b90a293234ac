"""Turning projection rows into API bodies."""

from __future__ import annotations

from typing import Any, Literal

from services.gateway.schemas import (
    ActiveDeployment,
    ActiveDeployments,
    Approval,
    CommandRequest,
    CommandResponse,
    CommandResult,
    DeploymentDetail,
    PendingApproval,
    PendingApprovals,
)
from shared.events import Event
from shared.models import DeploymentPlan

DECIDED_STATUS = {
    "deployment.requested": "deploying",
    "approval.requested": "pending_approval",
    "plan.failed": "validation_failed",
    "plan.rejected": "validation_failed",
}


def plan(row: dict[str, Any]) -> DeploymentPlan:
    return DeploymentPlan.model_validate(
        {
            k: row[k]
            for k in (
                "plan_id",
                "status",
                "user_id",
                "intent",
                "env",
                "artifact",
                "evidence",
                "created_at",
                "updated_at",
                "validation_errors",
            )
        }
    )


def plan_body(row: dict[str, Any]) -> dict[str, Any]:
    body = plan(row).model_dump(mode="json")
    body["details"] = row["details"]
    return body


def plan_detail(row: dict[str, Any]) -> DeploymentDetail:
    return DeploymentDetail(plan=plan_body(row), approval=row["details"].get("approval"))


def command_response(
    command_id: str, plan_id: str, decided: Event | None, row: dict[str, Any] | None, request: CommandRequest
) -> CommandResponse:
    response = _command_response(plan_id, decided, row, request)
    # The decisive event is the truth at this moment; the projection may trail it by milliseconds.
    data = decided.model_dump(mode="json")["data"] if decided else {}
    current = response.plan
    artifact = data.get("config") or (
        current.artifact.model_dump(mode="json") if current and current.artifact else None
    )
    result = CommandResult(
        plan_id=plan_id,
        status=DECIDED_STATUS.get(decided.type, "planning") if decided else "planning",
        artifact=artifact,
        requires_approval=response.requires_approval,
        errors=response.validation_errors,
    )
    error = response.message if response.status == "validation_failed" else None
    return response.model_copy(update={"command_id": command_id, "result": result, "error": error})


def _command_response(
    plan_id: str, decided: Event | None, row: dict[str, Any] | None, request: CommandRequest
) -> CommandResponse:
    current = plan(row) if row else None
    if decided is None:
        return CommandResponse(
            command_id="",
            status="accepted",
            plan_id=plan_id,
            plan=current,
            message=f"accepted; the plan is still being prepared: follow it at /api/deployments/{plan_id}",
        )
    data = decided.model_dump(mode="json")["data"]
    if decided.type == "plan.failed":
        return CommandResponse(
            command_id="",
            status="validation_failed",
            plan_id=plan_id,
            plan=current,
            message=data["reason"],
            validation_errors=[data["reason"]],
        )
    if decided.type == "plan.rejected":
        errors = [f["message"] for f in data["errors"]]
        return CommandResponse(
            command_id="",
            status="validation_failed",
            plan_id=plan_id,
            plan=current,
            message="the plan failed its guardrails",
            validation_errors=errors,
        )
    endpoint = data["config"]["endpoint_name"]
    if decided.type == "approval.requested":
        return CommandResponse(
            command_id="",
            status="success",
            plan_id=plan_id,
            plan=current,
            requires_approval=True,
            message=f"{endpoint} requires approval before it deploys to {data['env']}",
        )
    return CommandResponse(
        command_id="",
        status="success",
        plan_id=plan_id,
        plan=current,
        message=f"{endpoint} is deploying to {data['env']}",
    )


def approval(row: dict[str, Any]) -> Approval:
    request = row["request"]
    return Approval(
        plan_id=row["plan_id"],
        intent=row["intent"],
        env=request["env"],
        requested_by=row["requested_by"],
        requested_at=row["requested_at"].isoformat(),
        expires_at=row["expires_at"].isoformat(),
        estimated_usd_per_hour=request["estimated_usd_per_hour"],
        artifact=request["config"],
        warnings=request["warnings"],
        evidence=request["evidence"],
        plan_hash=request.get("plan_hash", ""),
        approvals_required=request.get("approvals_required", 1),
        approvers=row.get("approvers", []),
        operation=request.get("operation", "deploy"),
        previous=request.get("previous"),
    )


def active(rows: list[dict[str, Any]]) -> ActiveDeployments:
    return ActiveDeployments(
        count=len(rows),
        deployments=[
            ActiveDeployment(
                plan_id=r["plan_id"],
                endpoint_name=(r["artifact"] or {}).get("endpoint_name"),
                status=r["status"],
                environment=r["env"],
                instance_type=(r["artifact"] or {}).get("instance_type"),
            )
            for r in rows
        ],
    )


def pending(rows: list[dict[str, Any]]) -> PendingApprovals:
    items = [
        PendingApproval(plan_id=a.plan_id, plan=a.model_dump(mode="json"), created_at=a.requested_at)
        for a in map(approval, rows)
    ]
    return PendingApprovals(count=len(items), approvals=items)


def replayed(command_id: str, plan_id: str, row: dict[str, Any] | None) -> CommandResponse:
    """The answer to a retried command (same Idempotency-Key): the first plan as it stands now."""
    current = plan(row) if row else None
    status = current.status.value if current else "planning"
    artifact = current.artifact.model_dump(mode="json") if current and current.artifact else None
    errors = current.validation_errors if current else []
    failed = status in ("validation_failed", "rejected")
    outcome: Literal["success", "validation_failed", "accepted"] = (
        "accepted" if status == "planning" else "validation_failed" if failed else "success"
    )
    return CommandResponse(
        command_id=command_id,
        status=outcome,
        result=CommandResult(
            plan_id=plan_id,
            status=status,
            artifact=artifact,
            requires_approval=status == "pending_approval",
            errors=errors,
        ),
        error="; ".join(errors) if failed else None,
        plan_id=plan_id,
        message=f"a retry of an earlier command: plan {plan_id} is {status}",
        requires_approval=status == "pending_approval",
        plan=current,
        validation_errors=errors,
    )
