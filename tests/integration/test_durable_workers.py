"""A durable consumer with `max_workers` runs that many handlers at once, and no more: the rest
of its events stay with the broker (not fetched and queued in the process, where their ack wait
would run out while they wait), and each event is handled once."""

from __future__ import annotations

import asyncio

import pytest

from services.runtime.messaging import Messaging
from shared.broker import load_identity
from shared.events import IntentReceived, IntentReceivedData
from shared.identity import durable_name
from shared.settings import Settings
from tests.infra import connect, found

pytestmark = pytest.mark.integration


async def test_max_workers_handlers_run_at_once_the_rest_wait_with_the_broker(nats_url: str) -> None:
    settings = Settings(nats_url=nats_url)
    planner = Messaging(settings, load_identity(settings, "planner"))
    gateway = Messaging(settings, load_identity(settings, "gateway"))
    publish = gateway.publisher(["intent.received"])
    running, most, handled = 0, 0, []
    release = asyncio.Event()

    @planner.durable("intent.received", max_workers=3)
    async def handle(event: IntentReceived) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        handled.append(event.plan_id)
        try:
            await release.wait()
        finally:
            running -= 1

    await gateway.broker.start()
    await planner.start()  # connects, then runs the durable's three pull loops
    admin = await connect(nats_url)  # only the admin may read another service's consumer
    js = admin.jetstream()
    consumer = durable_name("planner", "intent.received")
    try:
        for i in range(5):
            data = IntentReceivedData(command="deploy llama-3.1 8B for workers-bot", user_id="alice")
            await publish(IntentReceived(plan_id=f"plan-{i}", actor="alice", data=data))

        await found(lambda: running == 3, what="three handlers running")
        # while they hold their events, the other two stay with the broker: none is fetched into
        # this process to wait there (its ack wait running) for a handler to be free
        for _ in range(20):
            info = await js.consumer_info(settings.stream_name, consumer)
            assert (running, info.num_ack_pending, info.num_pending) == (3, 3, 2), info
        release.set()
        await found(lambda: len(handled) == 5, what="all five events handled")

        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, consumer)
            return running == 0 and info.num_ack_pending == 0 and info.num_pending == 0

        await found(all_acked, what="every event acknowledged")
        assert sorted(handled) == [f"plan-{i}" for i in range(5)]  # each once
        assert most == 3
    finally:
        release.set()
        await planner.stop()
        await gateway.broker.stop()
        await admin.close()
