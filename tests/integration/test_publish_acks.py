"""A publish to the stream gets exactly one answer: the stream's PubAck, never a subscriber's reply.

A JetStream publish is a NATS request; its answer is whatever first reaches the request's inbox.
The gateway listens on the decisive subjects with core subscriptions, and FastStream answers a
core message that carries a reply subject with the handler's return value (None: an empty body).
That empty body raced the PubAck: now and then the guardian or planner read "" as the ack
(JSONDecodeError), took a stored event for a failed publish and ran its handler again.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
import pytest

from shared.events import PlanFailed, PlanFailedData
from tests.infra import connect, signed
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def test_a_decisive_event_published_to_the_stream_is_answered_by_the_stream_alone(system: System) -> None:
    nc = await connect(system.settings.nats_url)
    try:
        inbox, bodies = nc.new_inbox(), list[bytes]()

        async def answered(msg: nats.aio.msg.Msg) -> None:
            bodies.append(msg.data)

        await nc.subscribe(inbox, cb=answered)
        for _ in range(5):
            event = PlanFailed(
                plan_id=str(uuid.uuid4()),
                actor="planner",
                data=PlanFailedData(reason="test: nobody waits for this plan"),
            )
            sent = signed(event, "planner")
            await nc.publish(event.subject, sent["message"], reply=inbox, headers=sent["headers"])
        await nc.flush()
        await asyncio.sleep(0.5)  # time enough for any second answer to arrive
        assert len(bodies) == 5, f"expected one answer per publish, got {bodies!r}"
        for body in bodies:
            assert json.loads(body)["stream"] == system.settings.stream_name
    finally:
        await nc.close()
