"""The event envelope and the catalog of event types (DESIGN.md, "Events").

Every event travels on subject ``agentops.<type>`` with header ``Nats-Msg-Id = id``.
Events caused by another event get an id derived from the cause and a step name, so a
handler that runs twice for one delivery publishes the same ids and the broker (and the
auditor's unique ``event_id``) drop the repeat.
"""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import Field, StrictFloat, StrictInt, StringConstraints, TypeAdapter

from shared.budgets import SCOPE, Budget, Threshold
from shared.models import (
    MAX_INSTANCES,
    Action,
    Env,
    Evidence,
    Finding,
    Frozen,
    SageMakerCall,
    SageMakerDeploymentConfig,
    SmokeTest,
    UpdateStrategy,
    utcnow,
)
from shared.schedules import RULE_NAMES, RuleName, Rules

SUBJECT_PREFIX = "agentops."
EVENT_ID_NAMESPACE = uuid.UUID("5b0c6c1e-7f7e-4d8a-9a59-4a2f2b9a0f11")

Text = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Plan ids double as KV keys and URL segments: a restricted alphabet keeps them safe everywhere.
PlanId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]


def derive_event_id(cause: uuid.UUID, step: str) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{cause}:{step}")


def subject_for(event_type: str) -> str:
    return SUBJECT_PREFIX + event_type


# `agentops audit replay --publish` re-publishes recorded events here: subscribers that want them
# (the notifier) hear them; nothing acts on them again, the auditor does not record them twice.
REPLAY_PREFIX = SUBJECT_PREFIX + "replay."


def replay_subject_for(event_type: str) -> str:
    return REPLAY_PREFIX + event_type


# ---- payloads -----------------------------------------------------------------------


class Constraints(Frozen):
    # strict: "2" or true is not a count, "20" not a budget; NaN and infinity are not numbers here
    budget_usd_per_hour: StrictFloat | StrictInt | None = Field(default=None, gt=0, le=10_000, allow_inf_nan=False)
    instance_count: StrictInt | None = Field(default=None, ge=1, le=MAX_INSTANCES)
    instance_type: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9.]{1,64}$")


class IntentReceivedData(Frozen):
    command: Text
    env: Env | None = None
    user_id: Name
    constraints: Constraints = Constraints()


class PlanProposedData(Frozen):
    intent: Text
    env: Env
    user_id: Name
    model_id: Name
    config: SageMakerDeploymentConfig
    evidence: list[Evidence] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)
    planner: str = "rules"


class PlanFailedData(Frozen):
    reason: str
    understood: dict[str, Any] = Field(default_factory=dict)
    suggestions: list[str] = Field(default_factory=list)


class PlanRejectedData(Frozen):
    errors: list[Finding]
    warnings: list[Finding] = Field(default_factory=list)
    operation: Literal["deploy", "restart", "scale", "update", "rollback", "approve"] = "deploy"


class ApprovalRequestedData(Frozen):
    intent: Text
    env: Env
    requested_by: Name
    config: SageMakerDeploymentConfig
    estimated_usd_per_hour: float
    expires_at: datetime
    warnings: list[Finding] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    # sha256 of the canonical config: an approval counts only for the content it was given for
    plan_hash: str = ""
    approvals_required: int = Field(default=1, ge=1, le=5)
    # a change of a live deployment (restart, scale, update, rollback) asks like a new plan;
    # `previous` is what runs now
    operation: Literal["deploy", "restart", "scale", "update", "rollback"] = "deploy"
    previous: SageMakerDeploymentConfig | None = None
    strategy: UpdateStrategy | None = None  # update and rollback: how traffic moves
    previous_usd_per_hour: float | None = None


class ApprovalDecidedData(Frozen):
    # "expired" is decided by the guardian when the request outlives its expiry
    decision: Literal["approved", "rejected", "expired"]
    approver: Name
    reason: Annotated[str, StringConstraints(max_length=1000)] = ""
    plan_hash: str | None = None


class DeploymentRequestedData(Frozen):
    operation: Literal["deploy", "restart", "scale", "update", "rollback"] = "deploy"
    env: Env
    config: SageMakerDeploymentConfig
    estimated_usd_per_hour: float
    # update and rollback: what runs now, its price, and how traffic moves to `config`
    previous: SageMakerDeploymentConfig | None = None
    previous_usd_per_hour: float | None = None
    strategy: UpdateStrategy | None = None
    # what the guardian let through but the requester should see (e.g. a gated model with no
    # Hugging Face token in dry-run)
    warnings: list[Finding] = Field(default_factory=list)


class DeploymentActionData(Frozen):
    action: Action
    requested_by: Name
    instance_count: int | None = Field(default=None, ge=1, le=100)
    # update: what to change (None: keep), and how; rollback: the strategy only
    model_id: Name | None = None
    instance_type: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9.]{1,64}$")
    strategy: UpdateStrategy | None = None
    # why, when it is not a person's request: the schedule's window closed, no invocations for N minutes
    reason: str | None = Field(default=None, max_length=300)


class DeploymentStatusData(Frozen):
    status: Literal["deploying", "deployed", "updating", "rolled_back", "failed", "paused", "deleted"]
    endpoint_name: str
    mode: Literal["dry-run", "sandbox", "aws"]
    calls: list[SageMakerCall] = Field(default_factory=list)
    reason: str | None = None
    smoke: SmokeTest | None = None  # deployed (or failed by it): the test request after InService
    # deployed after an update, rolled_back: the configuration the endpoint serves now, and its price
    config: SageMakerDeploymentConfig | None = None
    estimated_usd_per_hour: float | None = None


class BudgetSetData(Frozen):
    """A monthly budget set, changed or (budget None) removed, by whom."""

    scope: str = Field(pattern=SCOPE)
    budget: Budget | None = None
    set_by: Name


class ScheduleSetData(Frozen):
    """When a deployment runs, set, changed or (both None) removed, by whom. Once set, it replaces
    the plan's own idle rule and the env's default."""

    endpoint_name: str = Field(max_length=63)
    rules: Rules = Field(default_factory=Rules)
    # which of the rules this sets (a command that says only the idle rule keeps the schedule)
    fields: list[RuleName] = Field(default_factory=lambda: list(RULE_NAMES), min_length=1, max_length=2)
    set_by: Name


class BudgetThresholdCrossedData(Frozen):
    scope: str = Field(pattern=SCOPE)
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    monthly_usd: float
    threshold: Threshold
    spend_usd: float
    forecast_usd: float
    run_rate_usd_per_hour: float
    # pause: the plans whose endpoints the budget paused
    paused: list[PlanId] = Field(default_factory=list, max_length=1000)


class NotificationFailedData(Frozen):
    target: Name
    event_id: uuid.UUID
    event_type: Name
    attempts: int = Field(ge=1)
    error: Text


class MessageRejectedData(Frozen):
    """What a consumer refused to act on, in a form that can always be stored: the text fields
    are cleaned of what PostgreSQL or a terminal cannot take, the raw bytes kept as base64."""

    service: str
    subject: str
    error: str
    body_excerpt: str
    claimed_actor: str = ""
    # the key that signed it, when it was signed (by a key nobody trusts, or for content altered since)
    signer_key: str = ""
    body_base64: str = ""
    body_bytes: int = 0


# ---- envelopes ----------------------------------------------------------------------

E = TypeVar("E", bound="Event")


class Event(Frozen):
    """The envelope. Subclasses fix ``type`` and the payload model of ``data``."""

    TYPE: ClassVar[str] = ""

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    plan_id: PlanId
    causation_id: uuid.UUID | None = None
    actor: Name
    occurred_at: datetime = Field(default_factory=utcnow)
    data: Any

    @property
    def subject(self) -> str:
        return subject_for(self.type)

    def canonical_json(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    def caused(self, cls: builtins.type[E], step: str, actor: str, data: Any) -> E:
        """A follow-up event of this one, with a deterministic id."""
        return cls(  # type: ignore[call-arg]  # every concrete event defaults its own `type`
            id=derive_event_id(self.id, step),
            plan_id=self.plan_id,
            causation_id=self.id,
            actor=actor,
            data=data,
        )


class IntentReceived(Event):
    TYPE: ClassVar[str] = "intent.received"
    type: Literal["intent.received"] = "intent.received"
    data: IntentReceivedData


class PlanProposed(Event):
    TYPE: ClassVar[str] = "plan.proposed"
    type: Literal["plan.proposed"] = "plan.proposed"
    data: PlanProposedData


class PlanFailed(Event):
    TYPE: ClassVar[str] = "plan.failed"
    type: Literal["plan.failed"] = "plan.failed"
    data: PlanFailedData


class PlanRejected(Event):
    TYPE: ClassVar[str] = "plan.rejected"
    type: Literal["plan.rejected"] = "plan.rejected"
    data: PlanRejectedData


class ApprovalRequested(Event):
    TYPE: ClassVar[str] = "approval.requested"
    type: Literal["approval.requested"] = "approval.requested"
    data: ApprovalRequestedData


class ApprovalDecided(Event):
    TYPE: ClassVar[str] = "approval.decided"
    type: Literal["approval.decided"] = "approval.decided"
    data: ApprovalDecidedData


class DeploymentRequested(Event):
    TYPE: ClassVar[str] = "deployment.requested"
    type: Literal["deployment.requested"] = "deployment.requested"
    data: DeploymentRequestedData


class DeploymentAction(Event):
    TYPE: ClassVar[str] = "deployment.action"
    type: Literal["deployment.action"] = "deployment.action"
    data: DeploymentActionData


class DeploymentStatus(Event):
    TYPE: ClassVar[str] = "deployment.status"
    type: Literal["deployment.status"] = "deployment.status"
    data: DeploymentStatusData


class DeploymentChanged(Event):
    """A `deployment.status` the guardian keeps its record by, again under a type of its own: how
    an update or rollback ended, an endpoint paused or deleted, a failure. The guardian reads these
    few instead of every status (two or more per deployment, nearly all of which change nothing it
    keeps). Same data as the status, same cause (the request it answers): `changed_of` makes it."""

    TYPE: ClassVar[str] = "deployment.changed"
    type: Literal["deployment.changed"] = "deployment.changed"
    data: DeploymentStatusData


# The statuses that can change what the guardian keeps: a `deployed` counts only when it reports the
# configuration served after an update or rollback (`DeploymentStatusData.config`).
CHANGING_STATUSES = ("rolled_back", "failed", "paused", "deleted")


def changed_of(event: Event) -> DeploymentChanged | None:
    """The `deployment.changed` that repeats `event` for the guardian, or None when `event` is not
    a status that can change its record (a first deployment's `deploying` and `deployed`)."""
    if not isinstance(event, DeploymentStatus):
        return None
    d = event.data
    if d.status not in CHANGING_STATUSES and not (d.status == "deployed" and d.config is not None):
        return None
    return DeploymentChanged(
        id=derive_event_id(event.id, "changed"),
        plan_id=event.plan_id,
        causation_id=event.causation_id,
        actor=event.actor,
        occurred_at=event.occurred_at,
        data=d,
    )


class BudgetSet(Event):
    TYPE: ClassVar[str] = "budget.set"
    type: Literal["budget.set"] = "budget.set"
    data: BudgetSetData


class BudgetThresholdCrossed(Event):
    TYPE: ClassVar[str] = "budget.threshold_crossed"
    type: Literal["budget.threshold_crossed"] = "budget.threshold_crossed"
    data: BudgetThresholdCrossedData


class ScheduleSet(Event):
    TYPE: ClassVar[str] = "schedule.set"
    type: Literal["schedule.set"] = "schedule.set"
    data: ScheduleSetData


def budget_plan_id(scope: str) -> str:
    """Budget events are filed under a plan id of their own ("budget-env-prod")."""
    return "budget-" + scope.replace(":", "-")


class NotificationFailed(Event):
    """A webhook the notifier gave up on after its last retry."""

    TYPE: ClassVar[str] = "notification.failed"
    type: Literal["notification.failed"] = "notification.failed"
    data: NotificationFailedData


class MessageRejected(Event):
    """A message a service could not decode; recorded so nothing vanishes silently."""

    TYPE: ClassVar[str] = "message.rejected"
    type: Literal["message.rejected"] = "message.rejected"
    data: MessageRejectedData


CATALOG: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        IntentReceived,
        PlanProposed,
        PlanFailed,
        PlanRejected,
        ApprovalRequested,
        ApprovalDecided,
        DeploymentRequested,
        DeploymentAction,
        DeploymentStatus,
        DeploymentChanged,
        BudgetSet,
        BudgetThresholdCrossed,
        ScheduleSet,
        NotificationFailed,
        MessageRejected,
    )
}

AnyEvent = Annotated[
    IntentReceived
    | PlanProposed
    | PlanFailed
    | PlanRejected
    | ApprovalRequested
    | ApprovalDecided
    | DeploymentRequested
    | DeploymentAction
    | DeploymentStatus
    | DeploymentChanged
    | BudgetSet
    | BudgetThresholdCrossed
    | ScheduleSet
    | NotificationFailed
    | MessageRejected,
    Field(discriminator="type"),
]
ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(raw: bytes | str) -> Event:
    """Decode any catalog event; raises pydantic.ValidationError on anything else."""
    return ANY_EVENT.validate_json(raw)


def canonical_json(value: Any) -> str:
    """The form the audit hash covers: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
