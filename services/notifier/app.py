"""Notifier: delivers webhooks for the events subscribers asked for, replays included."""

from __future__ import annotations

import asyncio

import httpx
from faststream import FastStream

from services.notifier.webhooks import Target, deliver, load_targets
from shared.broker import (
    Publisher,
    build_broker,
    current_event,
    durable,
    load_identity,
    wait_for_stream,
    watch_consumers,
)
from shared.events import Event, NotificationFailed, NotificationFailedData
from shared.settings import Settings

SERVICE = "notifier"


def create_app(settings: Settings, targets: list[Target] | None = None) -> FastStream:
    identity = load_identity(settings, SERVICE)
    broker = build_broker(settings, identity)
    publish = Publisher(broker, settings, ["notification.failed"], identity.signer)
    chosen = targets if targets is not None else load_targets(settings.webhooks, settings.webhooks_path)
    client = httpx.AsyncClient(timeout=settings.notifier_timeout_seconds)

    async def notify(target: Target, event: Event) -> None:
        tries, error = await deliver(
            client, target, event, settings.notifier_max_attempts, settings.notifier_backoff_seconds
        )
        if error is not None:
            data = NotificationFailedData(
                target=target.name, event_id=event.id, event_type=event.type, attempts=tries, error=error
            )
            await publish(event.caused(NotificationFailed, f"notify:{target.name}", SERVICE, data))

    @durable(broker, settings, ">", SERVICE, max_workers=4)
    async def on_event() -> None:
        # Every subject, replays included (agentops.replay.<type>): a replay is how a missed
        # notification is sent again. (Any type: the event comes decoded from the middleware.)
        event = current_event()
        wanted = [t for t in chosen if t.wants(event)]
        await asyncio.gather(*(notify(t, event) for t in wanted))

    app = FastStream(broker)
    watch_consumers(app, broker, settings, SERVICE)

    @app.on_startup
    async def _stream() -> None:
        await wait_for_stream(broker, settings)

    @app.after_shutdown
    async def _close() -> None:
        await client.aclose()

    return app
