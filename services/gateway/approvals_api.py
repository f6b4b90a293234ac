"""Approvals: the seed's `GET /approvals` and `POST /approve`, plus per-plan approve/reject routes.

The gateway refuses what it can see is wrong (self-approval, a second vote by the same person, an
expired or already-decided request, a decision on another version of the plan) with a 4xx and
the reason; the guardian checks the same again before anything deploys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException

from services.gateway import views
from services.gateway.api import Gateway, GatewayDep, PlanIdPath, Viewer, existing, rate_limit
from services.gateway.auth import Principal, Role, require
from services.gateway.schemas import Approval, ApproveRequest, ApproveResponse, DecisionRequest
from shared.approvals import refusal
from shared.events import ApprovalDecided, ApprovalDecidedData

router = APIRouter(tags=["approvals"])
Approver = Annotated[Principal, Depends(require(Role.APPROVER))]
Decision = Annotated[DecisionRequest | None, Body()]


@router.get("/approvals")
async def approvals(gw: GatewayDep, _who: Viewer) -> list[Approval]:
    return [views.approval(row, intent) for row, intent in await gw.read.pending_approvals()]


@router.post("/approve")
async def approve(body: ApproveRequest, gw: GatewayDep, who: Approver) -> ApproveResponse:
    """The seed's shape. `approver`, when sent, must be the key's own user."""
    if body.approver is not None and body.approver != who.user_id:
        raise HTTPException(
            403, f"approver is taken from your API key ({who.user_id}); you cannot decide as {body.approver}"
        )
    return await decide(gw, who, body.plan_id, body.decision, body.reason, body.plan_hash)


@router.post("/approvals/{plan_id}/approve")
async def approve_plan(plan_id: PlanIdPath, gw: GatewayDep, who: Approver, body: Decision = None) -> ApproveResponse:
    body = body or DecisionRequest()
    return await decide(gw, who, plan_id, "approved", body.reason, body.plan_hash)


@router.post("/approvals/{plan_id}/reject")
async def reject_plan(plan_id: PlanIdPath, gw: GatewayDep, who: Approver, body: Decision = None) -> ApproveResponse:
    body = body or DecisionRequest()
    return await decide(gw, who, plan_id, "rejected", body.reason, body.plan_hash)


async def decide(
    gw: Gateway,
    who: Principal,
    plan_id: str,
    decision: Literal["approved", "rejected"],
    reason: str,
    seen_hash: str | None,
) -> ApproveResponse:
    """Refuse what the shared rule (shared/approvals.py) says will not count, with the reason;
    the guardian judges the same decision by the same rule before anything deploys."""
    rate_limit(gw, who)
    plan = await existing(gw, plan_id)
    request = await gw.read.approval(plan_id)
    if request is None:
        raise HTTPException(409, f"plan {plan_id} is {plan.status.value}; it never asked for an approval")
    if request.status != "pending":
        raise HTTPException(409, f"the approval request for {plan_id} is already {request.status}")
    if (refused := refusal(request.waiting(), who.user_id, decision, seen_hash, datetime.now(UTC))) is not None:
        status, why = refused
        raise HTTPException(status, f"{plan_id}: {why}")
    current_hash = request.request.plan_hash or None
    event = ApprovalDecided(
        plan_id=plan_id,
        actor=who.user_id,
        data=ApprovalDecidedData(decision=decision, approver=who.user_id, reason=reason, plan_hash=current_hash),
    )
    if decision == "approved" and (first := await _claim_vote(gw, plan_id, current_hash or "", event)) is not None:
        # A second click, or a retry after a 503: send the first vote again (the same event id,
        # so the stream drops it if it had arrived) and say it counts once.
        await gw.send(first)
        needed = request.request.approvals_required
        raise HTTPException(409, f"you already approved {plan_id}; it needs {needed} different approvers")
    await gw.send(event)
    return ApproveResponse(
        status=decision, plan_id=plan_id, approver=who.user_id, message=f"plan {plan_id} {decision} by {who.user_id}"
    )


async def _claim_vote(gw: Gateway, plan_id: str, plan_hash: str, event: ApprovalDecided) -> ApprovalDecided | None:
    try:
        first = await gw.idempotency.claim_vote(plan_id, plan_hash, event.actor, event.canonical_json().encode())
    except Exception as exc:
        raise HTTPException(
            503, f"the vote register is unreachable ({type(exc).__name__}); nothing was decided: retry shortly"
        ) from exc
    return None if first is None else ApprovalDecided.model_validate_json(first)
