"""Turning projection rows into API bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.gateway.schemas import Approval, CommandRequest, CommandResponse, MonthlyCost
from shared.events import Event
from shared.models import DeploymentPlan

HOURS_PER_MONTH = 730


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


def plan_detail(row: dict[str, Any]) -> dict[str, Any]:
    body = plan(row).model_dump(mode="json")
    body["details"] = row["details"]
    return body


def command_response(
    plan_id: str, decided: Event | None, row: dict[str, Any] | None, request: CommandRequest
) -> CommandResponse:
    current = plan(row) if row else None
    if decided is None:
        return CommandResponse(
            status="accepted",
            plan_id=plan_id,
            plan=current,
            message=f"accepted; the plan is still being prepared: follow it at /api/deployments/{plan_id}",
        )
    data = decided.model_dump(mode="json")["data"]
    if decided.type == "plan.failed":
        return CommandResponse(
            status="validation_failed",
            plan_id=plan_id,
            plan=current,
            message=data["reason"],
            validation_errors=[data["reason"]],
        )
    if decided.type == "plan.rejected":
        errors = [f["message"] for f in data["errors"]]
        return CommandResponse(
            status="validation_failed",
            plan_id=plan_id,
            plan=current,
            message="the plan failed its guardrails",
            validation_errors=errors,
        )
    endpoint = data["config"]["endpoint_name"]
    if decided.type == "approval.requested":
        return CommandResponse(
            status="success",
            plan_id=plan_id,
            plan=current,
            requires_approval=True,
            message=f"{endpoint} requires approval before it deploys to {data['env']}",
        )
    return CommandResponse(
        status="success", plan_id=plan_id, plan=current, message=f"{endpoint} is deploying to {data['env']}"
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
    )


def monthly_cost(active: list[dict[str, Any]], now: datetime) -> MonthlyCost:
    hourly = sum(float(r["details"].get("estimated_usd_per_hour") or 0.0) for r in active)
    return MonthlyCost(
        amount=round(hourly * HOURS_PER_MONTH, 2),
        trend="flat",
        percent_change=0.0,
        period=now.strftime("%Y-%m"),
        estimated=True,
        basis="run-rate: hourly estimate of active deployments x 730 h (no AWS billing configured)",
    )
