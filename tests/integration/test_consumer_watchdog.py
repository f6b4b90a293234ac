"""The watchdog restarts a service whose durable consumer went silent, and only then.

Silent: events waiting, no pull request outstanding, no progress, and no handler running in this
process. A real nats-server holds the consumer; the runtime's `on_silent` (which `agentops serve`
makes an exit) is observed instead.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from nats.js.api import ConsumerConfig

from services.runtime.messaging import ConsumerWatchdog, Messaging
from shared.broker import ensure_stream, load_identity
from shared.settings import Settings
from tests.infra import connect

pytestmark = pytest.mark.integration


class Exited(Exception):
    pass


async def setup(nats_url: str, name: str) -> tuple[Settings, Messaging, object]:
    settings = Settings(nats_url=nats_url)
    await ensure_stream(nats_url, settings)
    nc = await connect(nats_url)
    js = nc.jetstream()
    await js.add_consumer(settings.stream_name, ConsumerConfig(durable_name=name, filter_subject="agentops.test.>"))
    for i in range(3):
        await js.publish("agentops.test.x", b"{}", headers={"Nats-Msg-Id": f"{name}-{i}"})

    def exit_(service: str, consumer: str, pending: int) -> None:
        raise Exited(consumer)

    # any identity that may read the consumer
    runtime = Messaging(settings, load_identity(settings, "admin"), on_silent=exit_)
    await runtime.broker.start()
    runtime.watched.append(name)
    return settings, runtime, nc


async def watch(runtime: Messaging, seconds: float) -> bool:
    dog = ConsumerWatchdog(runtime, interval=0.1, strikes=3)
    try:
        await asyncio.wait_for(dog.run(), seconds)
    except Exited:
        return True
    except TimeoutError:
        return False
    return False


async def test_a_consumer_with_work_and_nobody_pulling_ends_the_process(nats_url: str) -> None:
    _, runtime, nc = await setup(nats_url, "silent")
    try:
        assert await watch(runtime, 3.0)
    finally:
        await runtime.broker.stop()
        await nc.close()


async def test_a_consumer_being_pulled_or_a_handler_running_is_left_alone(nats_url: str) -> None:
    settings, runtime, nc = await setup(nats_url, "busy")
    try:
        runtime.in_flight = 1  # a handler waiting on SageMaker
        assert not await watch(runtime, 1.0)
        runtime.in_flight = 0
        sub = await nc.jetstream().pull_subscribe("agentops.test.>", durable="busy", stream=settings.stream_name)

        async def pulling() -> None:  # a live consumer: a pull request always outstanding
            while True:
                with contextlib.suppress(Exception):  # fetched and never acked: pending, and pulled
                    await sub.fetch(1, timeout=5)

        task = asyncio.create_task(pulling())
        for _ in range(100):  # until the pull request is outstanding
            if (await sub.consumer_info()).num_waiting:
                break
            await asyncio.sleep(0.05)
        assert not await watch(runtime, 1.0)
        task.cancel()
    finally:
        await runtime.broker.stop()
        await nc.close()
