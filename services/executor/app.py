"""Executor: the only service that touches SageMaker. Dry-run records the calls it would make."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from services.executor.lifecycle import SERVICE, Context, Deployed, finish, start, wind_down
from shared import catalog
from shared.broker import Publisher, build_broker, durable, ensure_stream
from shared.events import DeploymentAction, DeploymentRequested
from shared.kv import KvStore, Store
from shared.settings import ExecutorMode, Settings


def create_app(settings: Settings, store: Store[Deployed] | None = None) -> FastStream:
    if settings.executor_mode is not ExecutorMode.DRY_RUN:
        raise SystemExit(
            f"EXECUTOR_MODE={settings.executor_mode.value} is not available in this build; "
            "only dry-run drives the lifecycle today (unset EXECUTOR_MODE)"
        )
    broker = build_broker(settings, SERVICE)
    publish = Publisher(broker, settings, ["deployment.status"])
    records: Store[Deployed] = store or KvStore(broker, "executor-deployments", Deployed, settings.stream_replicas)
    ctx = Context(
        catalog.models(),
        catalog.instances(),
        settings.executor_mode.value,
        settings.sagemaker_execution_role_arn,
        settings.aws_region,
    )

    @durable(broker, settings, "deployment.requested", SERVICE, max_workers=8)
    async def on_requested(event: DeploymentRequested) -> None:
        deploying, record = start(event, ctx)
        await publish(deploying)
        await records.put(event.plan_id, record)
        await asyncio.sleep(settings.dry_run_deploy_seconds)
        await publish(finish(event, ctx))

    @durable(broker, settings, "deployment.action", SERVICE, max_workers=4)
    async def on_action(event: DeploymentAction) -> None:
        outcome, record = wind_down(event, await records.get(event.plan_id), ctx)
        if outcome is not None:
            await publish(outcome)
        if record is not None:
            await records.put(event.plan_id, record)

    app = FastStream(broker)

    @app.on_startup
    async def _stream() -> None:
        await ensure_stream(settings.nats_url, settings)

    return app
