"""Auditor: appends every event on agentops.> to the hash-chained log and keeps the read model."""

from __future__ import annotations

from faststream import FastStream
from faststream.nats import NatsMessage

from services.auditor.store import append
from shared.broker import build_broker, durable, ensure_stream
from shared.db import make_engine
from shared.events import parse_event
from shared.settings import Settings

SERVICE = "auditor"


def create_app(settings: Settings) -> FastStream:
    broker = build_broker(settings, SERVICE)
    engine = make_engine(settings.database_url, role=settings.db_writer_role)

    @durable(broker, settings, ">", SERVICE)
    async def record(msg: NatsMessage) -> None:
        # Decoded here, not by a typed parameter: the auditor records every catalog event.
        await append(engine, parse_event(msg.body))

    app = FastStream(broker)

    @app.on_startup
    async def _stream() -> None:
        await ensure_stream(settings.nats_url, settings)

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    return app
