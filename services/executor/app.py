"""Executor: the only service that touches SageMaker.

dry-run records the calls it would make and simulates the transitions; sandbox (a moto server)
and aws make them through the same boto3 code (services/executor/aws.py).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from faststream import FastStream

from services.executor.aws import DeployFailed, SageMakerBackend
from services.executor.lifecycle import SERVICE, Deployed, finish, start, status, wind_down
from services.executor.lifecycle import Context as Ctx
from services.executor.sagemaker import AlarmPolicy
from shared import catalog
from shared.broker import (
    Publisher,
    build_broker,
    current_message,
    durable,
    load_identity,
    wait_for_stream,
    watch_consumers,
)
from shared.events import DeploymentAction, DeploymentRequested, DeploymentStatus, DeploymentStatusData
from shared.kv import KvStore, Store
from shared.settings import ExecutorMode, Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, store: Store[Deployed] | None = None, backend: SageMakerBackend | None = None
) -> FastStream:
    identity = load_identity(settings, SERVICE)
    broker = build_broker(settings, identity)
    publish = Publisher(broker, settings, ["deployment.status"], identity.signer)
    records: Store[Deployed] = store or KvStore(broker, "executor-deployments", Deployed, settings.stream_replicas)
    dry = settings.executor_mode is ExecutorMode.DRY_RUN
    aws = None if dry else (backend or SageMakerBackend(settings))
    ctx = Ctx(
        catalog.models(),
        catalog.instances(),
        settings.executor_mode.value,
        settings.sagemaker_execution_role_arn,
        settings.aws_region,
        AlarmPolicy(settings.alarm_5xx_threshold, settings.alarm_latency_ms),
    )

    @durable(broker, settings, "deployment.requested", SERVICE, max_workers=8)
    async def on_requested(event: DeploymentRequested) -> None:
        msg = current_message()
        deploying, record = start(event, ctx)
        await publish(deploying)
        await records.put(event.plan_id, record)
        if aws is None:
            await asyncio.sleep(settings.dry_run_deploy_seconds)
            await publish(finish(event, ctx))
            await records.put(event.plan_id, record.model_copy(update={"settled": True}))
            return
        endpoint = event.data.config.endpoint_name
        loop = asyncio.get_running_loop()

        def heartbeat() -> None:  # keep JetStream from redelivering while SageMaker works
            asyncio.run_coroutine_threadsafe(msg.in_progress(), loop)

        try:
            await asyncio.to_thread(aws.run, deploying.data.calls)
            outcome = await asyncio.to_thread(aws.wait_in_service, endpoint, heartbeat)
        except DeployFailed as exc:
            await publish(status(event, ctx, "failed", endpoint, [], str(exc)))
            return
        if outcome.status == "InService":
            await publish(finish(event, ctx))
            await records.put(event.plan_id, record.model_copy(update={"settled": True}))
        else:
            reason = outcome.reason or f"the endpoint is {outcome.status}"
            await publish(status(event, ctx, "failed", endpoint, [], reason))

    @durable(broker, settings, "deployment.action", SERVICE, max_workers=4)
    async def on_action(event: DeploymentAction) -> None:
        outcome, record = wind_down(event, await records.get(event.plan_id), ctx)
        if outcome is not None and aws is not None:
            try:
                await asyncio.to_thread(aws.run, outcome.data.calls)
            except DeployFailed as exc:
                endpoint = outcome.data.endpoint_name
                await publish(status(event, ctx, "failed", endpoint, [], f"{event.data.action.value}: {exc}"))
                return
        if outcome is not None:
            await publish(outcome)
        if record is not None:
            await records.put(event.plan_id, record)

    async def reconcile() -> None:
        """Deployed endpoints that vanished or failed outside AgentOps become status events."""
        assert aws is not None
        while True:
            await asyncio.sleep(settings.reconcile_seconds)
            try:
                await check_drift()
            except Exception:  # AWS or the broker away: try again next round
                log.exception("drift check failed; retrying next round")

    async def check_drift() -> None:
        assert aws is not None
        for key in await records.keys():
            record = await records.get(key)
            if record is None or not record.endpoint_live or not record.settled:
                continue  # nothing there, or SageMaker is still creating it
            state = await asyncio.to_thread(aws.endpoint, record.config.endpoint_name)
            if state.status not in ("missing", "Failed"):
                continue
            why = "deleted outside AgentOps" if state.status == "missing" else state.reason or "Failed"
            data = DeploymentStatusData(
                status="failed",
                endpoint_name=record.config.endpoint_name,
                mode=settings.executor_mode.value,  # type: ignore[arg-type]
                reason=f"drift: the endpoint was {why}",
            )
            await publish(DeploymentStatus(id=uuid.uuid4(), plan_id=key, actor=SERVICE, data=data))
            await records.put(key, record.model_copy(update={"endpoint_live": False}))

    app = FastStream(broker)
    watch_consumers(app, broker, settings, SERVICE)
    tasks: list[asyncio.Task[None]] = []

    @app.on_startup
    async def _stream() -> None:
        await wait_for_stream(broker, settings)

    @app.after_startup
    async def _reconciler() -> None:
        if aws is not None:
            tasks.append(asyncio.create_task(reconcile()))

    @app.on_shutdown
    async def _stop() -> None:
        for task in tasks:
            task.cancel()

    return app
