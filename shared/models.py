"""Domain models, with the seed's field names and API shapes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# The most instances one endpoint may have, whatever a setting says (settings may lower it per env).
MAX_INSTANCES = 4
ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
INSTANCE_TYPE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Env(StrEnum):
    STAGING = "staging"
    PROD = "prod"
    DEV = "dev"


class PlanStatus(StrEnum):
    PLANNING = "planning"
    VALIDATION_FAILED = "validation_failed"
    PENDING_APPROVAL = "pending_approval"
    REJECTED = "rejected"
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    UPDATING = "updating"
    ROLLED_BACK = "rolled_back"  # live on its previous configuration after an update was undone
    FAILED = "failed"
    PAUSED = "paused"
    DELETED = "deleted"


class Action(StrEnum):
    PAUSE = "pause"
    RESTART = "restart"
    SCALE = "scale"
    DELETE = "delete"
    UPDATE = "update"
    ROLLBACK = "rollback"


# Live and serving: deployed, or back on its previous configuration after an update was undone.
SERVING = frozenset({PlanStatus.DEPLOYED, PlanStatus.ROLLED_BACK})
# The seed's allowed transitions for the lifecycle buttons, plus update and rollback of a live one
# (one change of an endpoint at a time: nothing but pause and delete while it is updating).
ALLOWED_ACTIONS: dict[Action, frozenset[PlanStatus]] = {
    Action.PAUSE: frozenset({*SERVING, PlanStatus.DEPLOYING, PlanStatus.UPDATING}),
    Action.RESTART: frozenset({PlanStatus.PAUSED, PlanStatus.FAILED, *SERVING}),
    Action.SCALE: SERVING,
    Action.DELETE: frozenset(set(PlanStatus) - {PlanStatus.DELETED}),
    Action.UPDATE: SERVING,
    Action.ROLLBACK: SERVING,
}


class Frozen(BaseModel):
    # A default is always sent in a response: its schema says so (json_schema_serialization_defaults_required).
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_serialization_defaults_required=True)


class SageMakerDeploymentConfig(Frozen):
    """What the executor deploys: one SageMaker real-time endpoint."""

    model_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    endpoint_name: str
    instance_type: str
    instance_count: int = Field(ge=1, le=MAX_INSTANCES)
    rollback_alarms: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] = Field(
        default_factory=list, max_length=10
    )
    budget_usd_per_hour: float = Field(gt=0, le=10_000)
    # paused after this many minutes without invocations (shared/schedules.py; None: never)
    idle_pause_minutes: int | None = Field(default=None, ge=1, le=43_200)

    @field_validator("endpoint_name")
    @classmethod
    def _sagemaker_endpoint_name(cls, name: str) -> str:
        if not ENDPOINT_NAME_RE.fullmatch(name):
            raise ValueError(
                f"endpoint_name {name!r} is not a valid SageMaker name: use 1-63 letters, digits "
                "and hyphens, starting and ending with a letter or digit"
            )
        return name

    @field_validator("instance_type")
    @classmethod
    def _ml_instance(cls, value: str) -> str:
        if not INSTANCE_TYPE_RE.fullmatch(value):
            raise ValueError(f"instance_type {value!r} is not a SageMaker instance type like ml.g5.xlarge")
        return value


TrafficShift = Literal["all_at_once", "canary", "linear"]


class UpdateStrategy(Frozen):
    """How an update of a live endpoint moves traffic (SageMaker blue/green deployment guardrails):
    all at once, a canary share first, or linear steps, each held `wait_seconds` while the
    endpoint's alarms watch; an alarm in that time rolls the update back."""

    shift: TrafficShift = "all_at_once"
    percent: int = Field(default=10, ge=1, le=50, description="canary size, or each linear step, in % of capacity")
    wait_seconds: int = Field(default=300, ge=0, le=3600, description="held at each step while the alarms watch")

    def steps(self) -> int:
        """How many traffic shifts the update makes (each held `wait_seconds`)."""
        if self.shift == "all_at_once":
            return 1
        if self.shift == "canary":
            return 2
        return -(-100 // self.percent)

    def bake_seconds(self) -> int:
        return self.steps() * self.wait_seconds

    def describe(self) -> str:
        if self.shift == "all_at_once":
            return f"blue/green, all at once, baked {self.wait_seconds} s"
        if self.shift == "canary":
            return f"blue/green, a {self.percent}% canary for {self.wait_seconds} s, then the rest"
        return f"blue/green, linear steps of {self.percent}% every {self.wait_seconds} s"


# SageMaker's bounds on a blue/green update (MaximumExecutionTimeoutInSeconds); the new fleet's
# provisioning gets PROVISION_SECONDS on top of the strategy's bake time
MAX_UPDATE_SECONDS, MIN_UPDATE_SECONDS, PROVISION_SECONDS = 14_400, 600, 1_800


class Evidence(Frozen):
    title: str
    snippet: str
    url: str
    score: float


class Finding(Frozen):
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"


class SageMakerCall(Frozen):
    """One SageMaker API call, made or (in dry-run) that would have been made."""

    operation: str
    params: dict[str, Any]
    service: Literal["sagemaker", "cloudwatch", "sagemaker-runtime"] = "sagemaker"


class SmokeTest(Frozen):
    """One request to the endpoint once it is InService, in its container's wire format:
    `passed` (HTTP 200 with a body), `failed` (why), or `described` (dry-run: not sent)."""

    outcome: Literal["passed", "failed", "described"]
    latency_ms: float | None = Field(default=None, ge=0)
    detail: str = Field(default="", max_length=500)


class DeploymentPlan(BaseModel):
    """The read model of one plan, as the API returns it (seed shape plus a few read-only extras)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    plan_id: str
    status: PlanStatus
    user_id: str
    intent: str
    env: Env
    artifact: SageMakerDeploymentConfig | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    validation_errors: list[str] = Field(default_factory=list)
    cost_usd: float | None = Field(default=None, description="estimated spend so far (audit-log meter)")
    reason: str | None = Field(default=None, description="why the deployment failed, when it did")
    allowed_actions: list[Action] = Field(
        default_factory=list, description="the lifecycle actions this plan's status allows now"
    )
