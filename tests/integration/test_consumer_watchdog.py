"""The watchdog restarts a service whose durable consumer went silent, and only then.

Silent: events waiting, no pull request outstanding, no progress, and no handler running in this
process. A real nats-server holds the consumer; "exiting" is observed instead of performed.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from nats.js.api import ConsumerConfig

import shared.broker as broker_module
from shared.broker import ConsumerWatchdog, build_broker, ensure_stream, load_identity
from shared.settings import Settings
from tests.infra import connect

pytestmark = pytest.mark.integration


class Exited(Exception):
    pass


async def setup(nats_url: str, name: str) -> tuple[Settings, object]:
    settings = Settings(nats_url=nats_url)
    await ensure_stream(nats_url, settings)
    nc = await connect(nats_url)
    js = nc.jetstream()
    await js.add_consumer(settings.stream_name, ConsumerConfig(durable_name=name, filter_subject="agentops.test.>"))
    for i in range(3):
        await js.publish("agentops.test.x", b"{}", headers={"Nats-Msg-Id": f"{name}-{i}"})
    broker = build_broker(settings, load_identity(settings, "admin"))  # any identity that may read the consumer
    await broker.start()
    broker_module._WATCHED[id(broker)] = [name]
    return settings, (nc, broker)


async def watch(settings: Settings, broker: object, monkeypatch: pytest.MonkeyPatch, seconds: float) -> bool:
    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(broker_module.os, "_exit", exit_)
    dog = ConsumerWatchdog(broker, settings, "watchdog-test", interval=0.1, strikes=3)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(dog.run(), seconds)
    except Exited:
        return True
    except TimeoutError:
        return False
    return False


async def test_a_consumer_with_work_and_nobody_pulling_ends_the_process(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, (nc, broker) = await setup(nats_url, "silent")
    try:
        assert await watch(settings, broker, monkeypatch, 3.0)
    finally:
        await broker.stop()  # type: ignore[attr-defined]
        await nc.close()


async def test_a_consumer_being_pulled_or_a_handler_running_is_left_alone(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, (nc, broker) = await setup(nats_url, "busy")
    try:
        monkeypatch.setattr(broker_module, "_IN_FLIGHT", 1)  # a handler waiting on SageMaker
        assert not await watch(settings, broker, monkeypatch, 1.0)
        monkeypatch.setattr(broker_module, "_IN_FLIGHT", 0)
        sub = await nc.jetstream().pull_subscribe("agentops.test.>", durable="busy", stream=settings.stream_name)

        async def pulling() -> None:  # a live consumer: a pull request always outstanding
            while True:
                with contextlib.suppress(Exception):  # fetched and never acked: pending, and pulled
                    await sub.fetch(1, timeout=5)

        task = asyncio.create_task(pulling())
        await asyncio.sleep(0.2)
        assert not await watch(settings, broker, monkeypatch, 1.0)
        task.cancel()
    finally:
        await broker.stop()  # type: ignore[attr-defined]
        await nc.close()
