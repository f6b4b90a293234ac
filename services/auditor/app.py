"""Auditor: appends every event on agentops.> to the hash-chained log and keeps the read model."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream
from faststream.nats import NatsBroker, PullSub

from services.auditor.anchor import anchor_now
from services.auditor.consumer import DURABLE, OrderedAuditConsumer
from shared.broker import ALL_EVENTS, build_broker, load_identity, stream_for, wait_for_stream
from shared.db import make_engine, refuse_superuser
from shared.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "auditor"


def create_app(settings: Settings) -> FastStream:
    identity = load_identity(settings, SERVICE)
    broker = build_broker(settings, identity)
    engine = make_engine(settings.service_database_url)

    app = FastStream(broker)
    app.spec_broker = spec_broker(settings)  # type: ignore[attr-defined]
    tasks: list[asyncio.Task[None]] = []

    async def anchoring() -> None:
        """The chain's head, written outside the table on a schedule (see services/auditor/anchor.py)."""
        while True:
            await asyncio.sleep(settings.audit_anchor_seconds)
            try:
                await anchor_now(engine, settings.audit_anchor_path, settings, SERVICE)
            except Exception:
                log.exception("writing the audit anchor failed; retrying next round")

    @app.on_startup
    async def _stream() -> None:
        await refuse_superuser(engine, SERVICE)
        await wait_for_stream(broker, settings)

    consumer = OrderedAuditConsumer(settings, broker, engine, identity)

    @app.after_startup
    async def _consume() -> None:
        tasks.append(asyncio.create_task(consumer.run()))
        tasks.append(asyncio.create_task(anchoring()))

    @app.on_shutdown
    async def _stop() -> None:
        consumer.stopping = True
        for task in tasks:
            task.cancel()
        # nats-py can swallow a cancellation inside fetch(); never let shutdown hang on it
        await asyncio.wait(tasks, timeout=5)
        await consumer.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    return app


def spec_broker(settings: Settings) -> NatsBroker:
    """What the auditor consumes, declared for the AsyncAPI document only (never started): the
    consuming itself is services/auditor/consumer.py."""
    spec = NatsBroker(settings.nats_url, connect_timeout=1)

    @spec.subscriber(
        ALL_EVENTS, stream=stream_for(settings), durable=DURABLE, pull_sub=PullSub(batch_size=1), title=f"{SERVICE}:>"
    )
    async def record(body: bytes) -> None:
        """Every event, appended to the hash-chained log in stream order (batches, one transaction each)."""

    return spec
