"""Each service's class driven through its ports with in-memory fakes: stores, a publisher that
keeps what it is given, a clock, a SageMaker stand-in, a log. No broker, no database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.auditor.service import Auditor
from services.auditor.store import Signed
from services.executor.aws import DeployFailed, Outcome
from services.executor.lifecycle import Context, Deployed
from services.executor.service import Executor
from services.guardian.approvals import GuardedPlan
from services.guardian.service import Guardian, WaitingForRecord
from services.notifier.service import Notifier
from services.notifier.webhooks import Target
from shared import catalog
from shared.broker import load_identity
from shared.events import (
    ApprovalDecided,
    ApprovalDecidedData,
    DeploymentAction,
    DeploymentActionData,
    DeploymentRequested,
    DeploymentRequestedData,
    DeploymentStatus,
    DeploymentStatusData,
    Event,
    IntentReceived,
    IntentReceivedData,
)
from shared.guardrails import Spend
from shared.kv import MemoryStore
from shared.models import Action, Env, SageMakerDeploymentConfig, SmokeTest
from shared.settings import Settings
from tests.infra import signed
from tests.unit.test_approval_policy import NOW, policy, proposal


class Published(list[Event]):
    async def __call__(self, event: Event) -> None:
        self.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def nothing_spent() -> Spend:
    return Spend(month_to_date_usd=0.0)


def guardian() -> tuple[Guardian, Published, Clock, MemoryStore[GuardedPlan]]:
    published, clock, plans = Published(), Clock(NOW), MemoryStore[GuardedPlan]()
    return Guardian(plans, MemoryStore(), published, policy(), nothing_spent, clock), published, clock, plans


def approve(who: str, plan_hash: str, at: datetime) -> ApprovalDecided:
    data = ApprovalDecidedData(decision="approved", approver=who, plan_hash=plan_hash)
    return ApprovalDecided(plan_id="p1", actor=who, data=data, occurred_at=at)


async def test_guardian_holds_a_prod_plan_until_someone_else_approves() -> None:
    g, published, _, plans = guardian()
    await g.on_proposed(proposal(env=Env.PROD))
    assert published.types() == ["approval.requested"]
    record = await plans.get("p1")
    assert record is not None and record.state == "pending_approval"
    await g.on_decided(approve("alice", record.plan_hash, NOW))  # the requester herself
    assert published.types() == ["approval.requested"]
    await g.on_decided(approve("bob", record.plan_hash, NOW + timedelta(minutes=1)))
    assert published.types() == ["approval.requested", "deployment.requested"]


async def test_guardian_reports_the_time_from_request_to_the_decision_that_ended_it() -> None:
    published, plans, waited = Published(), MemoryStore[GuardedPlan](), []
    g = Guardian(
        plans, MemoryStore(), published, policy(), nothing_spent, Clock(NOW), decided=lambda *w: waited.append(w)
    )
    await g.on_proposed(proposal(env=Env.PROD))
    record = await plans.get("p1")
    assert record is not None
    await g.on_decided(approve("alice", record.plan_hash, NOW + timedelta(minutes=1)))  # the requester: nothing
    await g.on_decided(approve("bob", record.plan_hash, NOW + timedelta(minutes=7)))
    assert waited == [("approved", 420.0)]
    await g.on_decided(approve("carol", record.plan_hash, NOW + timedelta(minutes=9)))  # nothing left to decide
    assert waited == [("approved", 420.0)]


async def test_guardian_sweep_says_expired_and_the_record_follows_the_decision_in_stream_order() -> None:
    g, published, clock, plans = guardian()
    await g.on_proposed(proposal(env=Env.PROD))
    clock.now = NOW + timedelta(days=2)
    assert await g.sweep_once() == 1
    expired = published[-1]
    assert isinstance(expired, ApprovalDecided) and expired.data.decision == "expired"
    assert (await plans.get("p1")).state == "pending_approval"  # type: ignore[union-attr]
    assert await g.sweep_once() == 1 and published[-1].id == expired.id  # the same event again: deduplicated
    await g.on_decided(expired)  # it comes back on the stream
    assert (await plans.get("p1")).state == "expired"  # type: ignore[union-attr]
    assert await g.sweep_once() == 0


async def test_guardian_waits_for_the_record_a_decision_is_about() -> None:
    g, published, _, _ = guardian()
    with pytest.raises(WaitingForRecord):
        await g.on_decided(approve("bob", "0" * 64, NOW), deliveries=1)
    await g.on_decided(approve("bob", "0" * 64, NOW), deliveries=30)  # given up on: dropped
    assert published == []


CONFIG = SageMakerDeploymentConfig(
    model_name="meta-llama/Llama-3.1-8B-Instruct",
    endpoint_name="bot-staging",
    instance_type="ml.g5.xlarge",
    instance_count=1,
    budget_usd_per_hour=10,
)
REQUEST = DeploymentRequested(
    plan_id="p1",
    actor="guardian",
    data=DeploymentRequestedData(env=Env.STAGING, config=CONFIG, estimated_usd_per_hour=1.4),
)


class SageMaker:
    """A stand-in for the boto3 backend: records calls, answers as told."""

    def __init__(self, status: str = "InService", fail: str | None = None, smoke: str = "passed") -> None:
        self.status, self.fail, self.calls = status, fail, []  # type: ignore[var-annotated]
        self.smoked = smoke

    def smoke(self, call: Any) -> SmokeTest:
        self.calls.append(call.operation)
        if self.smoked == "passed":
            return SmokeTest(outcome="passed", latency_ms=12.5, detail="HTTP 200, 40 bytes of application/json")
        return SmokeTest(outcome="failed", latency_ms=30.0, detail="ModelError: CUDA out of memory")

    def run(self, calls: list[Any], owner: str | None = None) -> None:
        if self.fail:
            raise DeployFailed(self.fail)
        self.calls += [c.operation for c in calls]

    def wait_in_service(self, endpoint: str, heartbeat: Any) -> Outcome:
        heartbeat()
        return Outcome(self.status, "the container exited" if self.status == "Failed" else None)

    def endpoint(self, name: str) -> Outcome:
        return Outcome(self.status)


def executor(aws: SageMaker | None) -> tuple[Executor, Published, MemoryStore[Deployed]]:
    ctx = Context(
        catalog.models(), catalog.instances(), "sandbox" if aws else "dry-run", "arn:aws:iam::1:role/x", "us-east-1"
    )
    published, records = Published(), MemoryStore[Deployed]()

    async def no_wait(_: float) -> None:
        return None

    return Executor(records, published, ctx, aws, 5.0, sleep=no_wait), published, records


async def test_executor_in_dry_run_reports_the_calls_and_settles() -> None:
    x, published, records = executor(None)
    await x.on_requested(REQUEST)
    assert published.types() == ["deployment.status", "deployment.status"]
    assert [e.data.status for e in published] == ["deploying", "deployed"]  # type: ignore[attr-defined]
    assert "CreateEndpoint" in [c.operation for c in published[0].data.calls]  # type: ignore[attr-defined]
    assert (await records.get("p1")).settled  # type: ignore[union-attr]
    # the smoke test it would send, described: the container's wire format, not sent
    (check,) = published[1].data.calls  # type: ignore[attr-defined]
    assert (check.service, check.operation) == ("sagemaker-runtime", "InvokeEndpoint")
    assert json.loads(check.params["Body"])["parameters"]["max_new_tokens"] > 0
    assert published[1].data.smoke.outcome == "described"  # type: ignore[attr-defined]


async def test_executor_smoke_tests_the_endpoint_once_it_is_in_service() -> None:
    aws = SageMaker()
    x, published, _ = executor(aws)
    await x.on_requested(REQUEST)
    assert aws.calls[-1] == "InvokeEndpoint"
    assert [e.data.status for e in published] == ["deploying", "deployed"]  # type: ignore[attr-defined]
    smoke = published[-1].data.smoke  # type: ignore[attr-defined]
    assert smoke.outcome == "passed" and smoke.latency_ms == 12.5


async def test_a_failed_smoke_test_fails_the_deployment_with_the_endpoint_s_answer() -> None:
    x, published, _ = executor(SageMaker(smoke="failed"))
    await x.on_requested(REQUEST)
    assert [e.data.status for e in published] == ["deploying", "failed"]  # type: ignore[attr-defined]
    failed = published[-1].data  # type: ignore[attr-defined]
    assert failed.reason.startswith("smoke test:") and "CUDA out of memory" in failed.reason
    assert failed.smoke.outcome == "failed" and [c.operation for c in failed.calls] == ["InvokeEndpoint"]


async def test_executor_reports_sagemaker_s_reason_when_the_endpoint_fails() -> None:
    x, published, _ = executor(SageMaker(status="Failed"))
    await x.on_requested(REQUEST)
    assert [e.data.status for e in published] == ["deploying", "failed"]  # type: ignore[attr-defined]
    assert published[-1].data.reason == "the container exited"  # type: ignore[attr-defined]
    x, published, _ = executor(SageMaker(fail="AccessDenied: no role"))
    await x.on_requested(REQUEST)
    assert published[-1].data.reason == "AccessDenied: no role"  # type: ignore[attr-defined]


async def test_executor_turns_an_endpoint_deleted_outside_into_a_failure_once() -> None:
    aws = SageMaker()
    x, published, _ = executor(aws)
    await x.on_requested(REQUEST)
    aws.status = "missing"
    assert await x.check_drift() == 1
    assert "deleted outside AgentOps" in (published[-1].data.reason or "")  # type: ignore[attr-defined]
    assert await x.check_drift() == 0  # recorded as gone: not reported again


async def test_executor_pause_without_anything_created_changes_nothing() -> None:
    x, published, _ = executor(None)
    pause = DeploymentAction(
        plan_id="p9", actor="alice", data=DeploymentActionData(action=Action.PAUSE, requested_by="alice")
    )
    await x.on_action(pause)
    assert published == []


async def test_notifier_sends_what_each_target_asked_for_and_records_a_failure() -> None:
    sent: list[tuple[str, str]] = []

    async def deliver(target: Target, event: Event) -> tuple[int, str | None]:
        sent.append((target.name, event.type))
        return (3, "HTTP 500") if target.name == "down" else (1, None)

    targets = [
        Target(name="ops", url="https://hooks.example/ops", secret="s", events=["deployment.status:failed"]),
        Target(name="down", url="https://hooks.example/down", secret="s", events=["deployment.status:failed"]),
        Target(name="quiet", url="https://hooks.example/q", secret="s", events=["approval.requested"]),
    ]
    published = Published()
    data = DeploymentStatusData(status="failed", endpoint_name="bot-staging", mode="dry-run", reason="x")
    failed = REQUEST.caused(DeploymentStatus, "failed", "executor", data)
    await Notifier(targets, deliver, published).on_event(failed)
    assert sorted(sent) == [("down", "deployment.status"), ("ops", "deployment.status")]
    assert published.types() == ["notification.failed"]
    assert published[0].data.target == "down" and published[0].data.attempts == 3  # type: ignore[attr-defined]


class Log:
    def __init__(self, refuse: str | None = None) -> None:
        self.rows: list[Signed] = []
        self.refuse = refuse

    async def append_many(self, items: list[Signed], project: bool = True) -> None:
        if any(i.event.plan_id == self.refuse for i in items):
            raise UnicodeError("a value the database cannot store")
        self.rows += items


def message(event: Event, by: str) -> Any:
    sent = signed(event, by)

    async def in_progress() -> None:
        return None

    return SimpleNamespace(
        subject=event.subject, data=sent["message"], headers=sent["headers"], in_progress=in_progress
    )


def intent(plan_id: str) -> IntentReceived:
    return IntentReceived(plan_id=plan_id, actor="alice", data=IntentReceivedData(command="deploy x", user_id="alice"))


async def test_auditor_appends_authentic_events_and_records_the_rest_as_refused() -> None:
    rejected: list[tuple[str, str]] = []

    async def reject(body: bytes, subject: str, raw: Any, reason: str, headers: Any) -> None:
        rejected.append((subject, reason))

    log = Log(refuse="p3")
    auditor = Auditor(log, reject, load_identity(Settings(), "auditor").trusted)
    await auditor.record(
        [message(intent("p1"), "gateway"), message(intent("p2"), "planner"), message(intent("p3"), "gateway")]
    )
    assert [r.event.plan_id for r in log.rows] == ["p1"]
    assert len(rejected) == 2
    assert "produced by gateway, not planner" in rejected[0][1]  # p2: signed by a service that does not own it
    assert "cannot store" in rejected[1][1]  # p3: refused by the log as data, alone, and the batch went on


def second(plan_id: str, env: Env = Env.STAGING) -> Any:
    """Another plan for the same app and env as `proposal(env)` (same endpoint name)."""
    return proposal(env=env).model_copy(update={"plan_id": plan_id, "id": uuid.uuid4()})


async def test_guardian_gives_an_endpoint_to_one_live_plan_and_names_it_to_the_next() -> None:
    statuses: dict[str, str] = {}

    async def status_of(plan_id: str) -> str | None:
        return statuses.get(plan_id)

    published, plans = Published(), MemoryStore[GuardedPlan]()
    g = Guardian(plans, MemoryStore(), published, policy(), nothing_spent, Clock(NOW), status_of=status_of)
    await g.on_proposed(proposal())
    assert published.types() == ["deployment.requested"]
    statuses["p1"] = "deployed"
    await g.on_proposed(second("p2"))
    rejected = published[-1]
    assert rejected.type == "plan.rejected"
    reason = " ".join(f.message for f in rejected.data.errors)  # type: ignore[attr-defined]
    assert "bot-staging already belongs to plan p1 (deployed)" in reason and "DELETE /api/deployments/p1" in reason
    await g.on_proposed(proposal())  # the owner's own plan, delivered again, is still its own
    assert published.types()[-1] == "deployment.requested"
    # a plan in prod is another endpoint
    await g.on_proposed(second("p3", Env.PROD))
    assert published.types()[-1] == "approval.requested"
    # once the owner has failed (or is deleted), the endpoint is free again
    statuses["p1"] = "failed"
    await g.on_proposed(second("p4"))
    assert published.types()[-1] == "deployment.requested"


async def test_guardian_frees_an_endpoint_when_its_plan_is_deleted() -> None:
    g, published, _, _ = guardian()
    await g.on_proposed(proposal())
    await g.on_proposed(second("p2"))
    assert published.types() == ["deployment.requested", "plan.rejected"]
    await g.on_action(
        DeploymentAction(
            plan_id="p1", actor="alice", data=DeploymentActionData(action=Action.DELETE, requested_by="alice")
        )
    )
    await g.on_proposed(second("p5"))
    assert published.types()[-1] == "deployment.requested"


async def test_two_plans_for_one_endpoint_handled_at_once_give_it_to_one() -> None:
    g, published, _, _ = guardian()
    await asyncio.gather(*(g.on_proposed(second(f"q{i}")) for i in range(4)))
    assert sorted(published.types()) == ["deployment.requested"] + ["plan.rejected"] * 3
