"""Read models folded from the log. Pure functions: the same fold serves live appends and rebuilds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import Event
from shared.models import PlanStatus

Row = dict[str, Any]

LIFECYCLE_STATUS = {"deploying", "deployed", "failed", "paused", "deleted"}


def apply_deployment(row: Row | None, event: Event, seq: int) -> Row | None:
    """The `deployments` row after `event`, or None when the event does not concern it."""
    data = event.model_dump(mode="json")["data"]
    if event.type == "intent.received":
        if row is not None:
            return None
        return {
            "plan_id": event.plan_id,
            "status": PlanStatus.PLANNING.value,
            "user_id": data["user_id"],
            "intent": data["command"],
            "env": data["env"] or "staging",
            "artifact": None,
            "evidence": [],
            "validation_errors": [],
            "details": {"sagemaker_calls": []},
            "created_at": event.occurred_at,
            "updated_at": event.occurred_at,
            "last_seq": seq,
        }
    if row is None:
        return None
    new = dict(row, details=dict(row["details"]), updated_at=_later(row["updated_at"], event.occurred_at), last_seq=seq)
    _FOLDS.get(event.type, _ignore)(new, data)
    return new


def _plan_proposed(row: Row, data: dict[str, Any]) -> None:
    row["artifact"] = data["config"]
    row["evidence"] = data["evidence"]
    row["env"] = data["env"]
    row["details"].update(
        model_id=data["model_id"],
        assumptions=data["assumptions"],
        planner=data["planner"],
        endpoint_name=data["config"]["endpoint_name"],
    )


def _plan_failed(row: Row, data: dict[str, Any]) -> None:
    row["status"] = PlanStatus.VALIDATION_FAILED.value
    row["validation_errors"] = [data["reason"]]
    row["details"]["suggestions"] = data["suggestions"]


def _plan_rejected(row: Row, data: dict[str, Any]) -> None:
    row["details"]["findings"] = data["errors"] + data["warnings"]
    if data["operation"] in ("deploy", "approve"):
        row["status"] = PlanStatus.VALIDATION_FAILED.value
        row["validation_errors"] = [f["message"] for f in data["errors"]]
    else:
        row["details"]["last_rejection"] = [f["message"] for f in data["errors"]]


def _approval_requested(row: Row, data: dict[str, Any]) -> None:
    if data.get("operation", "deploy") != "deploy":  # a change of a live plan: it keeps running as it is
        row["details"]["pending_change"] = {
            k: data.get(k)
            for k in (
                "operation",
                "config",
                "previous",
                "estimated_usd_per_hour",
                "requested_by",
                "approvals_required",
                "plan_hash",
                "expires_at",
            )
        }
        return
    row["status"] = PlanStatus.PENDING_APPROVAL.value
    row["details"]["findings"] = data["warnings"]
    row["details"]["estimated_usd_per_hour"] = data["estimated_usd_per_hour"]


def _approval_decided(row: Row, data: dict[str, Any]) -> None:
    change = row["details"].get("pending_change")
    if change and data.get("plan_hash") in (None, change.get("plan_hash")):
        row["details"]["decisions"] = [*row["details"].get("decisions", []), data]
        if data["decision"] != "approved":
            row["details"]["pending_change"] = None
            row["details"]["last_rejection"] = [f"the {change['operation']} was {data['decision']}: {data['reason']}"]
        return
    if row["status"] != PlanStatus.PENDING_APPROVAL.value:
        return
    row["details"]["approval"] = data
    row["details"]["decisions"] = [*row["details"].get("decisions", []), data]
    if data["decision"] == "rejected":
        row["status"] = PlanStatus.REJECTED.value
    elif data["decision"] == "expired":
        row["status"] = PlanStatus.REJECTED.value
        row["validation_errors"] = [f"the approval request expired ({data['reason']}): submit the command again"]


def _deployment_requested(row: Row, data: dict[str, Any]) -> None:
    row["details"]["pending_change"] = None
    row["artifact"] = data["config"]
    row["details"]["estimated_usd_per_hour"] = data["estimated_usd_per_hour"]
    if data["operation"] != "scale":
        row["status"] = PlanStatus.DEPLOYING.value


def _deployment_action(row: Row, data: dict[str, Any]) -> None:
    row["details"]["last_action"] = data


def _deployment_status(row: Row, data: dict[str, Any]) -> None:
    row["status"] = data["status"]
    row["details"]["endpoint_name"] = data["endpoint_name"]
    row["details"]["mode"] = data["mode"]
    row["details"]["sagemaker_calls"] = row["details"].get("sagemaker_calls", []) + data["calls"]
    if data["reason"]:
        row["details"]["reason"] = data["reason"]


def _ignore(row: Row, data: dict[str, Any]) -> None:
    return None


_FOLDS = {
    "plan.proposed": _plan_proposed,
    "plan.failed": _plan_failed,
    "plan.rejected": _plan_rejected,
    "approval.requested": _approval_requested,
    "approval.decided": _approval_decided,
    "deployment.requested": _deployment_requested,
    "deployment.action": _deployment_action,
    "deployment.status": _deployment_status,
}


def apply_approval(row: Row | None, event: Event, seq: int) -> Row | None:
    """The `approvals` row after `event`, or None when the event does not concern it."""
    data = event.model_dump(mode="json")["data"]
    if event.type == "approval.requested":
        return {
            "plan_id": event.plan_id,
            "status": "pending",
            "requested_by": data["requested_by"],
            "requested_at": event.occurred_at,
            "expires_at": datetime.fromisoformat(data["expires_at"]),
            "request": data,
            "decided_by": None,
            "decided_at": None,
            "reason": None,
            "approvers": [],
            "last_seq": seq,
        }
    if row is None or row["status"] != "pending":
        return None
    if event.type == "approval.decided":
        return _decided(row, data, event.occurred_at, seq)
    # The plan moved on without a decision (deleted while pending, re-validation failed).
    if event.type == "plan.rejected" or (event.type == "deployment.status" and data.get("status") == "deleted"):
        return dict(row, status="withdrawn", last_seq=seq)
    return None


def _decided(row: Row, data: dict[str, Any], at: datetime, seq: int) -> Row | None:
    """Mirrors the guardian: a decision for another version of the plan, or a repeat, changes nothing."""
    request = row["request"]
    if data.get("plan_hash") and request.get("plan_hash") and data["plan_hash"] != request["plan_hash"]:
        return None
    if data["decision"] != "approved":
        return dict(
            row,
            status=data["decision"],
            decided_by=data["approver"],
            decided_at=at,
            reason=data["reason"],
            last_seq=seq,
        )
    if data["approver"] in row["approvers"] or data["approver"] == row["requested_by"]:
        return None
    approvers = [*row["approvers"], data["approver"]]
    done = len(approvers) >= request.get("approvals_required", 1)
    return dict(
        row,
        approvers=approvers,
        status="approved" if done else "pending",
        decided_by=", ".join(approvers) if done else None,
        decided_at=at if done else None,
        reason=data["reason"] if done else row["reason"],
        last_seq=seq,
    )


def _later(a: datetime, b: datetime) -> datetime:
    return max(a, b)
