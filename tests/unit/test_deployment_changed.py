"""Which of the executor's statuses are repeated as `deployment.changed`, the only ones the
guardian reads: those that can change the record it keeps (shared/events.py `changed_of`)."""

from __future__ import annotations

import uuid

import pytest

from shared.events import (
    CHANGING_STATUSES,
    DeploymentChanged,
    DeploymentStatus,
    DeploymentStatusData,
    IntentReceived,
    IntentReceivedData,
    changed_of,
)
from shared.models import SageMakerDeploymentConfig

CONFIG = SageMakerDeploymentConfig(
    model_name="mistralai/Mistral-7B-Instruct-v0.3",
    endpoint_name="bot-staging",
    instance_type="ml.g5.xlarge",
    instance_count=1,
    budget_usd_per_hour=20,
)


def status(step: str, config: SageMakerDeploymentConfig | None = None) -> DeploymentStatus:
    data = DeploymentStatusData(status=step, endpoint_name="bot-staging", mode="dry-run", config=config)  # type: ignore[arg-type]
    return DeploymentStatus(plan_id="plan-1", actor="executor", causation_id=uuid.uuid4(), data=data)


@pytest.mark.parametrize("step", ["deploying", "deployed", "updating"])
def test_a_first_deployment_and_a_change_under_way_are_not_repeated(step: str) -> None:
    assert changed_of(status(step)) is None


@pytest.mark.parametrize("step", [*CHANGING_STATUSES])
def test_endings_and_stops_are_repeated_with_the_same_data_and_cause(step: str) -> None:
    original = status(step, CONFIG if step == "rolled_back" else None)
    changed = changed_of(original)
    assert isinstance(changed, DeploymentChanged)
    assert (changed.plan_id, changed.causation_id, changed.data) == (
        original.plan_id,
        original.causation_id,
        original.data,
    )
    assert changed.actor == "executor" and changed.occurred_at == original.occurred_at


def test_a_deployment_that_ends_an_update_is_repeated_once_under_one_id() -> None:
    """`deployed` with the configuration it now serves: only an update or rollback reports that.
    A redelivered request publishes it again: the same id, which the stream drops as a copy."""
    original = status("deployed", CONFIG)
    first, again = changed_of(original), changed_of(original)
    assert first is not None and again is not None
    assert first.id == again.id != original.id
    assert first.subject == "agentops.deployment.changed"


def test_other_events_are_not_repeated() -> None:
    intent = IntentReceived(plan_id="p", actor="u", data=IntentReceivedData(command="deploy x", env="dev", user_id="u"))
    assert changed_of(intent) is None
