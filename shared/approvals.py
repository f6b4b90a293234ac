"""Who may approve, how many must, until when, and for which version: the one rule of approvals.

The guardian acts on it, the auditor's projection folds the log with it, and the gateway answers
requests with it, so the three cannot disagree. Pure: the time a decision is judged at is the
decision's own `occurred_at` (signed by the gateway that took it), never a reader's clock, so
folding the log again gives the same answer the guardian gave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.events import ApprovalDecidedData, canonical_json
from shared.models import Env, SageMakerDeploymentConfig
from shared.settings import Settings

Outcome = Literal["ignored", "counted", "approved", "rejected", "expired"]


class Waiting(BaseModel):
    """A request waiting for approvers: a new plan, or a change (restart, scale, update, rollback) of a live one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    requested_by: str
    approvals_required: int
    plan_hash: str
    expires_at: datetime
    approved_by: tuple[str, ...] = ()

    @classmethod
    def of(cls, request: Any, expires_at: datetime, approved_by: Iterable[str] = ()) -> Waiting:
        """From whatever records a request (the event that asked, the guardian's record, the
        approvals row): who asked, how many must approve, and for which plan hash."""
        return cls(
            requested_by=request.requested_by,
            approvals_required=request.approvals_required,
            plan_hash=request.plan_hash,
            expires_at=expires_at,
            approved_by=tuple(approved_by),
        )


def approvals_required(env: Env, usd_per_hour: float, settings: Settings) -> int:
    """0: none; 1: one approver (prod, or over the cost threshold); 2: over the second threshold."""
    if usd_per_hour > settings.two_approvers_over_usd_per_hour:
        return 2
    if env is Env.PROD or usd_per_hour > settings.approval_cost_threshold_usd_per_hour:
        return 1
    return 0


def plan_hash(env: Env, model_id: str, config: SageMakerDeploymentConfig) -> str:
    """What an approver approves: the env, the model and the whole config, nothing else."""
    content = {"env": env.value, "model_id": model_id, "config": config.model_dump(mode="json")}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def decide(waiting: Waiting, decision: ApprovalDecidedData, at: datetime) -> tuple[Outcome, Waiting]:
    """What one decision, taken at `at`, does to a waiting request.

    ignored: given for another version of the plan, a self-approval, or a second vote by the same
    person (counts once); expired: the guardian's expiry, or any decision taken after expires_at;
    rejected: one rejection is enough; counted: approved, more approvers needed; approved: done.
    """
    if decision.plan_hash is not None and waiting.plan_hash and decision.plan_hash != waiting.plan_hash:
        return "ignored", waiting
    if decision.decision == "expired" or at > waiting.expires_at:
        return "expired", waiting
    if decision.decision == "rejected":
        return "rejected", waiting
    if decision.approver == waiting.requested_by or decision.approver in waiting.approved_by:
        return "ignored", waiting
    counted = waiting.model_copy(update={"approved_by": (*waiting.approved_by, decision.approver)})
    return ("approved" if len(counted.approved_by) >= waiting.approvals_required else "counted"), counted


def refusal(
    waiting: Waiting,
    approver: str,
    decision: Literal["approved", "rejected"],
    seen_hash: str | None,
    now: datetime,
) -> tuple[int, str] | None:
    """Why a decision would be refused before it is sent (HTTP status, what to do), or None. The
    same rule as `decide`, said to the person deciding."""
    if now >= waiting.expires_at:
        return 409, f"the approval request expired at {waiting.expires_at.isoformat()}: submit the command again"
    if decision == "approved" and approver == waiting.requested_by:
        return 403, "the requester cannot approve their own plan: ask another approver"
    if decision == "approved" and approver in waiting.approved_by:
        return 409, f"you already approved it; it needs {waiting.approvals_required} different approvers"
    if seen_hash is not None and waiting.plan_hash and seen_hash != waiting.plan_hash:
        return 409, "the plan changed since you reviewed it: review the current version (GET /approvals)"
    return None
