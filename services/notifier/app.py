"""Notifier: delivers webhooks for the events subscribers asked for, replays included."""

from __future__ import annotations

import httpx
from faststream import FastStream

from services.notifier.service import SERVICE, Notifier
from services.notifier.webhooks import Target, deliver, load_targets
from shared.bus import Bus
from shared.events import Event
from shared.settings import Settings


def create_app(settings: Settings, bus: Bus, targets: list[Target] | None = None) -> FastStream:
    assert bus.name == SERVICE
    chosen = targets if targets is not None else load_targets(settings.webhooks, settings.webhooks_path)
    client = httpx.AsyncClient(timeout=settings.notifier_timeout_seconds)

    async def post(target: Target, event: Event) -> tuple[int, str | None]:
        return await deliver(client, target, event, settings.notifier_max_attempts, settings.notifier_backoff_seconds)

    notifier = Notifier(chosen, post, bus.publisher(["notification.failed"]))
    bus.trace_only(notifier.acts_on)  # a span per delivery worth tracing, none per event ignored
    bus.handles_only(notifier.types)  # and the broker delivers no event no target wants

    @bus.durable(">", max_workers=4)
    async def on_event() -> None:
        # Every subject, replays included (agentops.replay.<type>). Any type: the event comes
        # decoded from the middleware.
        await notifier.on_event(bus.current_event())

    app = bus.app()

    @app.after_shutdown
    async def _close() -> None:
        await client.aclose()

    return app
