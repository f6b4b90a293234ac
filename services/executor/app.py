"""Executor: the only service that touches SageMaker.

dry-run records the calls it would make and simulates the transitions; sandbox (a moto server)
and aws make them through the same boto3 code (services/executor/aws.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from faststream import FastStream

from services.executor.aws import SageMakerBackend
from services.executor.lifecycle import SERVICE, Context, Deployed
from services.executor.sagemaker import AlarmPolicy
from services.executor.schedules import InvocationsFn, Keeper, RuleRecord, keep
from services.executor.service import Backend, Executor
from shared import catalog
from shared.bus import Bus
from shared.events import DeploymentAction, DeploymentRequested, Event, ScheduleSet, changed_of
from shared.hub import Hub
from shared.kv import KvStore, MemoryStore, Store
from shared.models import SageMakerCall, utcnow
from shared.settings import ExecutorMode, Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    bus: Bus,
    store: Store[Deployed] | None = None,
    backend: Backend | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastStream:
    assert bus.name == SERVICE
    records: Store[Deployed] = store or KvStore(bus.broker, "executor-deployments", Deployed, settings.stream_replicas)
    dry = settings.executor_mode is ExecutorMode.DRY_RUN
    ctx = Context(
        catalog.models(),
        catalog.instances(),
        settings.executor_mode.value,
        settings.sagemaker_execution_role_arn,
        settings.aws_region,
        AlarmPolicy(settings.alarm_5xx_threshold, settings.alarm_latency_ms),
        hf_token=settings.hf_token_configured,
    )
    aws = None if dry else (backend or SageMakerBackend(settings))
    what = "SageMaker and CloudWatch calls made (or, in dry-run, described)"
    calls = bus.metrics.counter("sagemaker_calls", what, ("operation", "mode", "error"))

    def count(made: list[SageMakerCall], error: str) -> None:
        for call in made:
            calls.labels(call.operation, ctx.mode, error).inc()

    statuses = bus.metrics.counter("deployment_status", "deployment statuses reported, by status", ("status",))
    send = bus.publisher(["deployment.status", "deployment.changed", "deployment.action"])

    async def publish(event: Event) -> None:
        await send(event)
        statuses.labels(getattr(event.data, "status", "?")).inc()
        # then again for the guardian when it can change its record (a redelivery publishes
        # both again under the same ids: the stream drops the copies)
        if (changed := changed_of(event)) is not None:
            await send(changed)

    hub = Hub(ctx.models, settings.hf_endpoint, timeout=settings.hub_timeout_seconds)
    executor = Executor(
        records, publish, ctx, aws, settings.dry_run_deploy_seconds, count_calls=count, hub=hub, clock=clock
    )
    rules: Store[RuleRecord] = (
        MemoryStore()
        if store is not None
        else KvStore(bus.broker, "executor-schedules", RuleRecord, settings.stream_replicas)
    )
    keeper = Keeper(records, rules, send, _invocations(aws) if aws is not None else None, clock)
    unowned = bus.metrics.gauge(
        "unowned_endpoints", "endpoints with AgentOps tags that no live plan has (found by the reconciler)", ()
    )

    @bus.durable("deployment.requested", max_workers=8)
    async def on_requested(event: DeploymentRequested) -> None:
        await executor.on_requested(event, bus.current_message().in_progress)

    @bus.durable("deployment.action", max_workers=4)
    async def on_action(event: DeploymentAction) -> None:
        await executor.on_action(event)

    @bus.durable("schedule.set")
    async def on_schedule(event: ScheduleSet) -> None:
        await keeper.on_set(event)

    app = bus.app()
    tasks: list[asyncio.Task[None]] = []
    stopping = asyncio.Event()

    @app.after_startup
    async def _reconciler() -> None:
        if aws is not None:
            tasks.append(asyncio.create_task(reconcile(executor, settings.reconcile_seconds, unowned.set)))
        tasks.append(asyncio.create_task(keep(keeper, settings.schedule_check_seconds, stopping)))

    @app.on_shutdown
    async def _stop() -> None:
        stopping.set()
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: nats-py can swallow a cancellation inside a KV read (as the guardian's)
            await asyncio.wait(tasks, timeout=5)

    return app


def _invocations(aws: Backend) -> InvocationsFn:
    async def read(endpoint: str, since: datetime, until: datetime) -> float:
        return await asyncio.to_thread(aws.invocations, endpoint, since, until)

    return read


async def reconcile(executor: Executor, every: float, report: Callable[[int], None] = lambda n: None) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await executor.check_drift()
            left = await executor.unowned()
            report(len(left))
            if left:
                log.warning(
                    "%d endpoint(s) carry AgentOps tags but belong to no live plan (billing still): %s",
                    len(left),
                    ", ".join(f"{name} (plan {plan or 'unknown'})" for name, plan in left),
                )
        except Exception:  # AWS or the broker away: try again next round
            log.exception("drift check failed; retrying next round")
