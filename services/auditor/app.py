"""Auditor: appends every event on agentops.> to the hash-chained log and keeps the read model."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream
from faststream.nats import NatsBroker, PullSub

from services.auditor.anchor import anchor_now
from services.auditor.service import SERVICE, Auditor
from services.auditor.store import PostgresLog
from shared.broker import ALL_EVENTS, servers, stream_for
from shared.bus import Bus
from shared.db import make_engine, refuse_superuser
from shared.identity import durable_name
from shared.settings import Settings

log = logging.getLogger(__name__)
DURABLE = durable_name(SERVICE, ">")


def create_app(settings: Settings, bus: Bus) -> FastStream:
    assert bus.name == SERVICE
    engine = make_engine(settings.service_database_url)
    auditor = Auditor(PostgresLog(engine), bus.reject, bus.identity.trusted)
    consumer = bus.ordered(DURABLE, auditor.record, batch=settings.audit_batch, linger_ms=settings.audit_linger_ms)

    app = bus.app()
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

    @app.after_startup
    async def _consume() -> None:
        tasks.append(asyncio.create_task(consumer.run()))
        tasks.append(asyncio.create_task(anchoring()))

    @app.on_shutdown
    async def _stop() -> None:
        auditor.stopping = consumer.stopping = True
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
    consuming itself is the runtime's ordered consumer."""
    spec = NatsBroker(servers(settings.nats_url or "nats://127.0.0.1:4222"), connect_timeout=1)

    @spec.subscriber(
        ALL_EVENTS, stream=stream_for(settings), durable=DURABLE, pull_sub=PullSub(batch_size=1), title=f"{SERVICE}:>"
    )
    async def record(body: bytes) -> None:
        """Every event, appended to the hash-chained log in stream order (batches, one transaction each)."""

    return spec
