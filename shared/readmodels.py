"""The read models: what the auditor's fold (shared/fold.py) keeps in Postgres and the gateway
serves. Typed end to end: these are the rows the fold produces, the API's response models, and
(through /openapi.json) the dashboard's TypeScript types."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.approvals import Waiting
from shared.events import ApprovalDecidedData, ApprovalRequestedData, DeploymentActionData
from shared.models import (
    Env,
    Evidence,
    Finding,
    PlanStatus,
    SageMakerCall,
    SageMakerDeploymentConfig,
    SmokeTest,
    UpdateStrategy,
)
from shared.schedules import Rules

Operation = Literal["deploy", "restart", "scale", "update", "rollback"]

ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "withdrawn"]


class Model(BaseModel):
    # Rows written by older versions may hold keys this version no longer keeps: read past them.
    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


class PendingChange(Model):
    """A restart, scale, update or rollback of a live plan waiting for approvers; the plan keeps
    running as it is."""

    operation: Literal["restart", "scale", "update", "rollback"]
    config: SageMakerDeploymentConfig
    previous: SageMakerDeploymentConfig | None = None
    estimated_usd_per_hour: float
    previous_usd_per_hour: float | None = None
    strategy: UpdateStrategy | None = None
    requested_by: str
    approvals_required: int
    plan_hash: str
    expires_at: datetime


class Change(Model):
    """An update or rollback of the live endpoint: before and after, how traffic moves, and what
    it does to the hourly cost."""

    operation: Literal["update", "rollback"]
    before: SageMakerDeploymentConfig
    after: SageMakerDeploymentConfig
    strategy: UpdateStrategy
    usd_per_hour_before: float | None = None
    usd_per_hour_after: float
    cost_delta_usd_per_hour: float | None = None
    requested_at: datetime


class Revision(Model):
    """One configuration the endpoint was given, and how that ended."""

    at: datetime
    operation: Operation
    config: SageMakerDeploymentConfig
    outcome: Literal["deployed", "rolled_back", "failed"]
    reason: str | None = None


class ScheduleRecord(Model):
    rules: Rules
    set_by: str
    set_at: datetime


class PlanDetails(Model):
    """Everything about a plan besides the seed's fields, each set by the event named."""

    model_id: str | None = Field(default=None, description="plan.proposed: the catalog model")
    planner: str | None = Field(default=None, description="plan.proposed: rules, or the LLM backend")
    assumptions: list[str] = Field(default_factory=list, description="plan.proposed: what the planner assumed")
    endpoint_name: str | None = Field(default=None, description="the SageMaker endpoint the plan owns")
    suggestions: list[str] = Field(default_factory=list, description="plan.failed: commands that would work")
    findings: list[Finding] = Field(default_factory=list, description="the guardrails' errors and warnings")
    last_rejection: list[str] = Field(
        default_factory=list, description="why the last restart or scale of the live plan was refused"
    )
    estimated_usd_per_hour: float | None = None
    waiting: Waiting | None = Field(default=None, description="the approval request open now, if any")
    pending_change: PendingChange | None = None
    approval: ApprovalDecidedData | None = Field(default=None, description="the decision that settled the request")
    decisions: list[ApprovalDecidedData] = Field(default_factory=list, description="every decision that counted")
    last_action: DeploymentActionData | None = None
    mode: Literal["dry-run", "sandbox", "aws"] | None = Field(default=None, description="how the executor ran it")
    sagemaker_calls: list[SageMakerCall] = Field(default_factory=list, description="made, or in dry-run described")
    reason: str | None = Field(default=None, description="why the deployment failed (or the last status said so)")
    smoke: SmokeTest | None = Field(
        default=None, description="the test request after the last deploy: outcome, latency"
    )
    operation: Operation | None = Field(default=None, description="the last request the executor got")
    change: Change | None = Field(default=None, description="the last update or rollback")
    history: list[Revision] = Field(
        default_factory=list, description="every configuration the endpoint has had, oldest first"
    )
    schedule: ScheduleRecord | None = Field(
        default=None, description="schedule.set: when it runs, as last set (None: the plan's own idle rule)"
    )


class PlanRow(Model):
    """One plan as the `deployments` table keeps it."""

    plan_id: str
    status: PlanStatus
    user_id: str
    intent: str
    env: Env
    artifact: SageMakerDeploymentConfig | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    validation_errors: list[str] = Field(default_factory=list)
    details: PlanDetails = Field(default_factory=PlanDetails)
    created_at: datetime
    updated_at: datetime
    last_seq: int = 0

    def columns(self) -> dict[str, Any]:
        """The row as the table's columns take it (JSON inside, datetimes as they are)."""
        values = self.model_dump(mode="json", exclude={"details", "created_at", "updated_at"})
        # only what was set: a planning row's details stay as small as they are
        values["details"] = self.details.model_dump(mode="json", exclude_defaults=True)
        values.update(created_at=self.created_at, updated_at=self.updated_at)
        return values


class ApprovalRow(Model):
    """One approval request as the `approvals` table keeps it (the latest request of a plan)."""

    plan_id: str
    status: ApprovalStatus
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    request: ApprovalRequestedData
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    approvers: list[str] = Field(default_factory=list)
    last_seq: int = 0

    def waiting(self) -> Waiting:
        return Waiting.of(self.request, self.expires_at, self.approvers)

    def columns(self) -> dict[str, Any]:
        values = self.model_dump(mode="json", exclude={"requested_at", "expires_at", "decided_at"})
        values.update(requested_at=self.requested_at, expires_at=self.expires_at, decided_at=self.decided_at)
        return values
