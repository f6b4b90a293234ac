"""Request and response bodies of the REST API (the seed's shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator, model_validator

from shared.events import Constraints
from shared.models import DeploymentPlan, Env
from shared.text import tree_problem

UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[\w.@+-]+$")]


CONTROL = {chr(c) for c in range(32) if chr(c) not in "\t\n\r"} | {"\x7f"}


def no_control_characters(value: str, field: str) -> str:
    if any(ch in CONTROL for ch in value):
        raise ValueError(f"{field} contains control characters: send plain text")
    return value


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


class CommandResult(BaseModel):
    """The seed's `result` object."""

    plan_id: str
    status: str
    artifact: dict[str, Any] | None = None
    requires_approval: bool = False
    errors: list[str] = Field(default_factory=list)


class CommandResponse(BaseModel):
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


class ActionResponse(BaseModel):
    success: bool = True
    status: Literal["accepted"] = "accepted"
    command_id: str
    plan_id: str
    action: str
    message: str


class ScaleRequest(Strict):
    instance_count: StrictInt = Field(
        ge=1, le=4, description="1 to 4; to stop paying for an endpoint, pause it (there is no scale to 0)"
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


class ApproveResponse(BaseModel):
    status: Literal["approved", "rejected"]
    plan_id: str
    approver: str
    message: str


class Approval(BaseModel):
    plan_id: str
    intent: str
    env: str
    requested_by: str
    requested_at: str
    expires_at: str
    estimated_usd_per_hour: float
    artifact: dict[str, Any]
    warnings: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    plan_hash: str
    approvals_required: int
    approvers: list[str]
    operation: Literal["deploy", "restart", "scale"] = Field(
        default="deploy", description="deploy: a new plan; restart or scale: a change of a live one"
    )
    previous: dict[str, Any] | None = Field(default=None, description="for a change: the configuration running now")


class Count(BaseModel):
    count: int


class DeploymentList(BaseModel):
    deployments: list[DeploymentPlan]
    count: int = Field(description="all plans matching, not only this page")
    limit: int
    offset: int


class DeploymentDetail(BaseModel):
    plan: dict[str, Any] = Field(description="the plan, with `details`: assumptions, findings, SageMaker calls")
    approval: dict[str, Any] | None = None


class ActiveDeployment(BaseModel):
    plan_id: str
    endpoint_name: str | None
    status: str
    environment: str | None
    instance_type: str | None


class ActiveDeployments(BaseModel):
    count: int
    deployments: list[ActiveDeployment]


class PendingApproval(BaseModel):
    plan_id: str
    plan: dict[str, Any]
    created_at: str


class PendingApprovals(BaseModel):
    count: int
    approvals: list[PendingApproval]


class Period(BaseModel):
    start: str
    end: str


class MonthlyCost(BaseModel):
    amount: float
    currency: str = "USD"
    trend: Literal["up", "down", "stable"]
    percent_change: float
    period: Period
    estimated: bool
    basis: str
