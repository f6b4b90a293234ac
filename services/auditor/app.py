"""Auditor: appends every event on agentops.> to the hash-chained log and keeps the read model."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream
from faststream.nats import NatsMessage

from services.auditor.anchor import anchor_now
from services.auditor.store import append
from shared.broker import build_broker, durable, ensure_stream
from shared.db import make_engine
from shared.events import parse_event
from shared.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "auditor"
REPLAY_PREFIX = "agentops.replay."


def create_app(settings: Settings) -> FastStream:
    broker = build_broker(settings, SERVICE)
    engine = make_engine(settings.database_url, role=settings.db_writer_role)

    @durable(broker, settings, ">", SERVICE)
    async def record(msg: NatsMessage) -> None:
        # Decoded here, not by a typed parameter: the auditor records every catalog event.
        if msg.raw_message.subject.startswith(REPLAY_PREFIX):
            return  # a re-publication of what the log already holds (`agentops audit replay --publish`)
        await append(engine, parse_event(msg.body))

    app = FastStream(broker)
    tasks: list[asyncio.Task[None]] = []

    async def anchoring() -> None:
        """The chain's head, written outside the table on a schedule (see services/auditor/anchor.py)."""
        while True:
            await asyncio.sleep(settings.audit_anchor_seconds)
            try:
                await anchor_now(engine, settings.audit_anchor_path, settings.nats_url, settings.stream_replicas)
            except Exception:
                log.exception("writing the audit anchor failed; retrying next round")

    @app.on_startup
    async def _stream() -> None:
        await ensure_stream(settings.nats_url, settings)

    @app.after_startup
    async def _anchors() -> None:
        tasks.append(asyncio.create_task(anchoring()))

    @app.on_shutdown
    async def _stop() -> None:
        for task in tasks:
            task.cancel()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    return app
