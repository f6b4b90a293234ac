"""Planner: turns `intent.received` into `plan.proposed` or `plan.failed`."""

from __future__ import annotations

from faststream import FastStream

from services.planner.planning import SERVICE, plan_command
from shared import catalog
from shared.broker import Publisher, build_broker, durable, ensure_stream
from shared.events import IntentReceived
from shared.settings import Settings


def create_app(settings: Settings) -> FastStream:
    broker = build_broker(settings, SERVICE)
    publish = Publisher(broker, settings, ["plan.proposed", "plan.failed"])
    models, instances = catalog.models(), catalog.instances()  # validated at start, not per message

    @durable(broker, settings, "intent.received", SERVICE, max_workers=4)
    async def on_intent(event: IntentReceived) -> None:
        await publish(plan_command(event, models, instances, settings))

    app = FastStream(broker)

    @app.on_startup
    async def _stream() -> None:
        await ensure_stream(settings.nats_url, settings)

    return app
