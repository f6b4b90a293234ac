"""Request and response bodies of the REST API (the seed's shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator, model_validator

from shared.events import CATALOG, ApprovalDecidedData, Constraints
from shared.models import (
    INSTANCE_TYPE_RE,
    MAX_INSTANCES,
    DeploymentPlan,
    Env,
    Evidence,
    Finding,
    PlanStatus,
    SageMakerDeploymentConfig,
    TrafficShift,
)
from shared.readmodels import PlanDetails
from shared.text import tree_problem

UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[\w.@+-]+$")]


CONTROL = {chr(c) for c in range(32) if chr(c) not in "\t\n\r"} | {"\x7f"}


def no_control_characters(value: str, field: str) -> str:
    if any(ch in CONTROL for ch in value):
        raise ValueError(f"{field} contains control characters: send plain text")
    return value


class Response(BaseModel):
    """A response body: fields with defaults are always sent, so clients may rely on them."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Strict(BaseModel):
    """A request body: unknown fields refused, and every text in it (keys too) plain text."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        if (problem := tree_problem(data)) is not None:
            raise ValueError(problem)
        return data


class CommandRequest(Strict):
    command: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    env: Env | None = Field(
        default=None, description="staging, prod or dev; the stricter of this and the command's own wins"
    )
    user_id: UserId | None = Field(
        default=None, description="accepted for the seed's clients and ignored: the user is the API key's"
    )
    constraints: Constraints = Field(
        default_factory=Constraints,
        description="the seed's constraints (budget_usd_per_hour, instance_count, instance_type); "
        "what the command itself says wins",
    )

    @field_validator("env", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("command")
    @classmethod
    def _printable(cls, value: str) -> str:
        return no_control_characters(value, "command")


class CommandResult(Response):
    """The seed's `result` object."""

    plan_id: str
    status: PlanStatus
    artifact: SageMakerDeploymentConfig | None = None
    requires_approval: bool = False
    errors: list[str] = Field(default_factory=list)


class CommandResponse(Response):
    """The seed's shape (command_id, status, result, error) plus flat fields for simple clients."""

    command_id: str
    status: Literal["success", "validation_failed", "accepted"]
    result: CommandResult | None = None
    error: str | None = None
    plan_id: str
    message: str
    requires_approval: bool = False
    # set when the command was a lifecycle request ("pause chatbot-x") on an existing plan
    action: str | None = None
    plan: DeploymentPlan | None = None
    validation_errors: list[str] = Field(default_factory=list)


class ActionResponse(Response):
    success: bool = True
    status: Literal["accepted"] = "accepted"
    command_id: str
    plan_id: str
    action: str
    message: str


class StrategyRequest(Strict):
    """How traffic moves to the new configuration; what is left out comes from UPDATE_STRATEGY."""

    shift: TrafficShift | None = Field(default=None, description="all_at_once, canary or linear (blue/green)")
    percent: StrictInt | None = Field(
        default=None, ge=1, le=50, description="canary size or linear step, % of capacity"
    )
    wait_seconds: StrictInt | None = Field(default=None, ge=0, le=3600, description="how long each step is watched")


class UpdateRequest(Strict):
    """What to change on the live endpoint (at least one of model, instance type, count)."""

    model_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = Field(
        default=None, description="a catalog model id, e.g. Qwen/Qwen2.5-7B-Instruct"
    )
    instance_type: str | None = Field(default=None, max_length=64, description="an ml.* instance type")
    instance_count: StrictInt | None = Field(default=None, ge=1, le=MAX_INSTANCES)
    strategy: StrategyRequest | None = None

    @field_validator("instance_type")
    @classmethod
    def _ml_type(cls, value: str | None) -> str | None:
        if value is not None and not INSTANCE_TYPE_RE.fullmatch(value):
            raise ValueError(f"instance_type {value!r} is not a SageMaker instance type like ml.g5.xlarge")
        return value

    @model_validator(mode="after")
    def _something(self) -> UpdateRequest:
        if self.model_id is None and self.instance_type is None and self.instance_count is None:
            raise ValueError("say what to change: model_id, instance_type and/or instance_count")
        return self


class RollbackRequest(Strict):
    strategy: StrategyRequest | None = None


class ScaleRequest(Strict):
    instance_count: StrictInt = Field(
        ge=1,
        le=MAX_INSTANCES,
        description=f"1 to {MAX_INSTANCES}; to stop paying for an endpoint, pause it (there is no scale to 0)",
    )

    @field_validator("instance_count", mode="before")
    @classmethod
    def _zero_is_pause(cls, value: Any) -> Any:
        if value == 0 and not isinstance(value, bool):
            raise ValueError("an endpoint cannot scale to 0 instances: pause it to stop paying for it")
        return value


class ApproveRequest(Strict):
    plan_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]
    decision: Literal["approved", "rejected"]
    approver: UserId | None = Field(default=None, description="optional; must match the API key's user when given")
    reason: Annotated[str, StringConstraints(max_length=1000)] = ""
    plan_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        return no_control_characters(value, "reason")


class DecisionRequest(Strict):
    reason: Annotated[str, StringConstraints(max_length=1000)] = ""

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        return no_control_characters(value, "reason")

    plan_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="the plan_hash you reviewed (from GET /approvals); a changed plan is refused"
    )


class ApproveResponse(Response):
    status: Literal["approved", "rejected"]
    plan_id: str
    approver: str
    message: str


class Approval(Response):
    """A request waiting for approvers (GET /approvals)."""

    plan_id: str
    intent: str
    env: Env
    requested_by: str
    requested_at: str
    expires_at: str
    estimated_usd_per_hour: float
    artifact: SageMakerDeploymentConfig
    warnings: list[Finding]
    evidence: list[Evidence]
    plan_hash: str
    approvals_required: int
    approvers: list[str]
    operation: Literal["deploy", "restart", "scale"] = Field(
        default="deploy", description="deploy: a new plan; restart or scale: a change of a live one"
    )
    previous: SageMakerDeploymentConfig | None = Field(
        default=None, description="for a change: the configuration running now"
    )


class Count(Response):
    count: int


class DeploymentList(Response):
    deployments: list[DeploymentPlan]
    count: int = Field(description="all plans matching, not only this page")
    limit: int
    offset: int


class PlanWithDetails(DeploymentPlan):
    details: PlanDetails = Field(description="assumptions, findings, SageMaker calls, the failure's reason")


class DeploymentDetail(Response):
    plan: PlanWithDetails
    approval: ApprovalDecidedData | None = Field(default=None, description="the decision that settled its request")


class ActiveDeployment(Response):
    plan_id: str
    endpoint_name: str | None
    status: PlanStatus
    environment: Env | None
    instance_type: str | None


class ActiveDeployments(Response):
    count: int
    deployments: list[ActiveDeployment]


class PendingApproval(Response):
    plan_id: str
    plan: Approval
    created_at: str


class PendingApprovals(Response):
    count: int
    approvals: list[PendingApproval]


class Period(Response):
    start: str
    end: str


class MonthlyCost(Response):
    amount: float
    currency: str = "USD"
    trend: Literal["up", "down", "stable"]
    percent_change: float
    period: Period
    estimated: bool
    basis: str


class Me(Response):
    user_id: str
    roles: list[str]
    key_id: str


class PlanCost(Response):
    plan_id: str
    usd: float
    month_to_date_usd: float
    usd_per_hour: float
    running: bool
    estimated: bool = True
    basis: str


class HistoryEvent(Response):
    """One event of a plan's timeline."""

    seq: int
    event_id: str
    type: str = Field(json_schema_extra={"enum": list(CATALOG)}, description="the event type")
    plan_id: str | None
    actor: str
    occurred_at: str
    hash: str
    data: dict[str, Any] = Field(description="the event's payload as signed; its schema per type is in /asyncapi")


class AuditEvent(HistoryEvent):
    """One recorded event with its place in the chain."""

    recorded_at: str
    prev_hash: str


class AuditPage(Response):
    events: list[AuditEvent]
    next_cursor: int | None = Field(description="pass it back as `cursor` for the next page; null at the end")
