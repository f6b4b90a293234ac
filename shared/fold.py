"""How events change a plan and its approval request: the one fold. Pure.

The auditor folds the log with it into the `deployments` and `approvals` tables (live appends and
rebuilds alike); the gateway folds the decisive event of a command with it to answer at once. A
decision on an approval request is judged by shared/approvals.py, as the guardian judges it.
"""

from __future__ import annotations

from typing import Any

from shared.approvals import Waiting, decide
from shared.events import (
    ApprovalDecided,
    ApprovalRequested,
    DeploymentAction,
    DeploymentRequested,
    DeploymentStatus,
    Event,
    IntentReceived,
    PlanFailed,
    PlanProposed,
    PlanRejected,
    ScheduleSet,
)
from shared.models import Env, PlanStatus
from shared.readmodels import ApprovalRow, Change, PendingChange, PlanRow, Revision, ScheduleRecord
from shared.schedules import Rules, merged

MAX_REVISIONS = 50  # history entries kept per plan (the audit log keeps them all)


def fold_plan(row: PlanRow | None, event: Event, seq: int = 0) -> PlanRow | None:
    """The plan after `event`, or None when the event does not concern it."""
    if isinstance(event, IntentReceived):
        if row is not None:
            return None
        d = event.data
        return PlanRow(
            plan_id=event.plan_id,
            status=PlanStatus.PLANNING,
            user_id=d.user_id,
            intent=d.command,
            env=d.env or Env.STAGING,
            created_at=event.occurred_at,
            updated_at=event.occurred_at,
            last_seq=seq,
        )
    if row is None:
        return None
    change = _PLAN_FOLDS.get(event.type)
    update: dict[str, Any] = change(row, event) if change else {}
    details = update.pop("details", {})
    return row.model_copy(
        update={
            **update,
            "details": row.details.model_copy(update=details) if details else row.details,
            "updated_at": max(row.updated_at, event.occurred_at),
            "last_seq": seq,
        }
    )


def _proposed(row: PlanRow, event: PlanProposed) -> dict[str, Any]:
    d = event.data
    return {
        "artifact": d.config,
        "evidence": list(d.evidence),
        "env": d.env,
        "details": {
            "model_id": d.model_id,
            "assumptions": list(d.assumptions),
            "planner": d.planner,
            "endpoint_name": d.config.endpoint_name,
        },
    }


def _failed(row: PlanRow, event: PlanFailed) -> dict[str, Any]:
    return {
        "status": PlanStatus.VALIDATION_FAILED,
        "validation_errors": [event.data.reason],
        "details": {"suggestions": list(event.data.suggestions)},
    }


def _rejected(row: PlanRow, event: PlanRejected) -> dict[str, Any]:
    d = event.data
    findings = {"findings": [*d.errors, *d.warnings]}
    if d.operation in ("deploy", "approve"):
        errors = [f.message for f in d.errors]
        return {"status": PlanStatus.VALIDATION_FAILED, "validation_errors": errors, "details": findings | _closed()}
    # a restart or scale refused: the live plan runs on as it is
    return {"details": findings | {"last_rejection": [f.message for f in d.errors], **_closed()}}


def _requested(row: PlanRow, event: ApprovalRequested) -> dict[str, Any]:
    d = event.data
    waiting = Waiting.of(d, d.expires_at)
    if d.operation != "deploy":  # a change of a live plan: it keeps running as it is
        change = PendingChange(
            operation=d.operation,
            config=d.config,
            previous=d.previous,
            estimated_usd_per_hour=d.estimated_usd_per_hour,
            previous_usd_per_hour=d.previous_usd_per_hour,
            strategy=d.strategy,
            requested_by=d.requested_by,
            approvals_required=d.approvals_required,
            plan_hash=d.plan_hash,
            expires_at=d.expires_at,
        )
        return {"details": {"waiting": waiting, "pending_change": change}}
    return {
        "status": PlanStatus.PENDING_APPROVAL,
        "artifact": d.config,
        "env": d.env,
        "details": {
            "waiting": waiting,
            "findings": list(d.warnings),
            "estimated_usd_per_hour": d.estimated_usd_per_hour,
        },
    }


def _decided(row: PlanRow, event: ApprovalDecided) -> dict[str, Any]:
    waiting = row.details.waiting
    change = row.details.pending_change
    if waiting is None or (change is None and row.status is not PlanStatus.PENDING_APPROVAL):
        return {}
    outcome, counted = decide(waiting, event.data, event.occurred_at)
    if outcome == "ignored":
        return {}
    decisions = [*row.details.decisions, event.data]
    if outcome == "counted":
        return {"details": {"waiting": counted, "decisions": decisions}}
    if outcome == "approved":  # what happens next is the guardian's deployment.requested (or plan.rejected)
        return {"details": {"waiting": None, "decisions": decisions, "approval": event.data}}
    if change is not None:
        why = f"the {change.operation} was {outcome}: {event.data.reason}"
        return {"details": {"decisions": decisions, "last_rejection": [why], **_closed()}}
    settled: dict[str, Any] = {"decisions": decisions, "approval": event.data, "waiting": None}
    if outcome == "expired":
        why = f"the approval request expired ({event.data.reason}): submit the command again"
        return {"status": PlanStatus.REJECTED, "validation_errors": [why], "details": settled}
    return {"status": PlanStatus.REJECTED, "details": settled}


def _deploying(row: PlanRow, event: DeploymentRequested) -> dict[str, Any]:
    d = event.data
    update: dict[str, Any] = {
        "artifact": d.config,
        "env": d.env,
        "details": {"estimated_usd_per_hour": d.estimated_usd_per_hour, **_closed()},
    }
    if d.warnings:
        update["details"]["findings"] = list(d.warnings)
    update["details"]["operation"] = d.operation
    if d.operation in ("update", "rollback") and d.previous is not None and d.strategy is not None:
        update["status"] = PlanStatus.UPDATING
        before = d.previous_usd_per_hour
        update["details"]["change"] = Change(
            operation=d.operation,
            before=d.previous,
            after=d.config,
            strategy=d.strategy,
            usd_per_hour_before=before,
            usd_per_hour_after=d.estimated_usd_per_hour,
            cost_delta_usd_per_hour=None if before is None else round(d.estimated_usd_per_hour - before, 4),
            requested_at=event.occurred_at,
        )
    elif d.operation != "scale":
        update["status"] = PlanStatus.DEPLOYING
    return update


def _action(row: PlanRow, event: DeploymentAction) -> dict[str, Any]:
    return {"details": {"last_action": event.data}}


def _status(row: PlanRow, event: DeploymentStatus) -> dict[str, Any]:
    d = event.data
    details: dict[str, Any] = {
        "endpoint_name": d.endpoint_name,
        "mode": d.mode,
        "sagemaker_calls": [*row.details.sagemaker_calls, *d.calls],
    }
    if d.reason or d.status == "deployed":  # a deployed endpoint has no standing failure
        details["reason"] = d.reason
    if d.smoke is not None:
        details["smoke"] = d.smoke
    update: dict[str, Any] = {"status": PlanStatus(d.status), "details": details}
    if d.config is not None:  # what the endpoint serves after an update or rollback
        update["artifact"] = d.config
    if d.status in ("deployed", "rolled_back", "failed") and (tried := row.artifact) is not None:
        change = row.details.change
        if d.status == "rolled_back" and change is not None:
            tried = change.after  # the configuration that was tried, not the one it went back to
        entry = Revision(
            at=event.occurred_at,
            operation=row.details.operation or "deploy",
            config=tried,
            outcome=d.status,  # type: ignore[arg-type]
            reason=d.reason,
        )
        details["history"] = [*row.details.history, entry][-MAX_REVISIONS:]
    return update


def _schedule(row: PlanRow, event: ScheduleSet) -> dict[str, Any]:
    d = event.data
    before = row.details.schedule
    idle = row.artifact.idle_pause_minutes if row.artifact is not None else None
    current = before.rules if before is not None else Rules(idle_pause_minutes=idle)
    rules = merged(current, d.rules, d.fields)
    return {"details": {"schedule": ScheduleRecord(rules=rules, set_by=d.set_by, set_at=event.occurred_at)}}


def _closed() -> dict[str, Any]:
    return {"waiting": None, "pending_change": None}


_PLAN_FOLDS: dict[str, Any] = {
    "plan.proposed": _proposed,
    "plan.failed": _failed,
    "plan.rejected": _rejected,
    "approval.requested": _requested,
    "approval.decided": _decided,
    "deployment.requested": _deploying,
    "deployment.action": _action,
    "deployment.status": _status,
    "schedule.set": _schedule,
}


def fold_approval(row: ApprovalRow | None, event: Event, seq: int = 0) -> ApprovalRow | None:
    """The plan's approval request after `event`, or None when the event does not concern it."""
    if isinstance(event, ApprovalRequested):
        return ApprovalRow(
            plan_id=event.plan_id,
            status="pending",
            requested_by=event.data.requested_by,
            requested_at=event.occurred_at,
            expires_at=event.data.expires_at,
            request=event.data,
            last_seq=seq,
        )
    if row is None or row.status != "pending":
        return None
    if isinstance(event, ApprovalDecided):
        outcome, counted = decide(row.waiting(), event.data, event.occurred_at)
        if outcome == "ignored":
            return None
        if outcome == "counted":
            return row.model_copy(update={"approvers": list(counted.approved_by), "last_seq": seq})
        return row.model_copy(
            update={
                "status": outcome,
                "approvers": list(counted.approved_by),
                "decided_by": ", ".join(counted.approved_by) if outcome == "approved" else event.data.approver,
                "decided_at": event.occurred_at,
                "reason": event.data.reason,
                "last_seq": seq,
            }
        )
    # The plan moved on without a decision (deleted while pending, re-validation failed).
    if isinstance(event, PlanRejected) or (isinstance(event, DeploymentStatus) and event.data.status == "deleted"):
        return row.model_copy(update={"status": "withdrawn", "last_seq": seq})
    return None


def touches_approvals(event: Event) -> bool:
    return event.type.startswith("approval.") or event.type in ("deployment.status", "plan.rejected")
