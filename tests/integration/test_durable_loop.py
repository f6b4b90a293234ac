"""A durable read by the runtime's own pull loop (`Messaging.durable`, here the guardian's
`deployment.changed`) keeps every promise a FastStream subscriber keeps: each event handled once
and in stream order, a forged one recorded as rejected and never handled, a failed handler's
event redelivered, the same Prometheus series, and nothing held back when it stops."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from services.runtime.messaging import Messaging
from shared.broker import load_identity
from shared.events import DeploymentChanged, DeploymentStatusData
from shared.identity import durable_name
from shared.settings import Settings
from tests.infra import connect, found

pytestmark = pytest.mark.integration
CONSUMER = durable_name("guardian", "deployment.changed")


def status(plan_id: str) -> DeploymentChanged:
    data = DeploymentStatusData(status="paused", endpoint_name=f"{plan_id}-ep", mode="dry-run")
    return DeploymentChanged(plan_id=plan_id, actor="executor", data=data)


def series(exposition: str, name: str, **labels: str) -> float:
    """The value of one Prometheus series in `exposition` (0 when absent)."""
    for line in exposition.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_durable_handles_each_event_once_in_order_and_refuses_a_forged_one(nats_url: str) -> None:
    settings = Settings(nats_url=nats_url)
    guardian = Messaging(settings, load_identity(settings, "guardian"))
    executor = Messaging(settings, load_identity(settings, "executor"))
    publish = executor.publisher(["deployment.changed"])
    handled: list[str] = []
    failed_once: list[str] = []

    @guardian.durable("deployment.changed")
    async def handle(event: DeploymentChanged) -> None:
        if event.plan_id == "plan-3" and not failed_once:
            failed_once.append(event.plan_id)
            raise ConnectionError("the store is away")  # may pass: redelivered
        handled.append(event.plan_id)

    admin = await connect(nats_url)
    await executor.broker.start()
    await guardian.start()  # connects and runs the durable's loop
    try:
        for i in range(5):
            await publish(status(f"plan-{i}"))
        forged = status("plan-forged").canonical_json().encode()  # unsigned: nobody vouches for it
        await admin.jetstream().publish("agentops.deployment.changed", forged, headers={"Nats-Msg-Id": "forged-1"})
        for i in range(5, 10):
            await publish(status(f"plan-{i}"))
        rejected = await admin.subscribe("agentops.message.rejected")  # recorded on the stream

        await found(lambda: len(handled) == 10, what="ten events handled")
        assert sorted(handled, key=lambda p: int(p.split("-")[1])) == [f"plan-{i}" for i in range(10)]
        assert len(set(handled)) == 10 and "plan-forged" not in handled
        assert failed_once == ["plan-3"]
        # in stream order, but for the one that failed and came back after its delay
        assert [p for p in handled if p != "plan-3"] == [f"plan-{i}" for i in range(10) if i != 3]
        js = admin.jetstream()

        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, CONSUMER)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await found(all_acked, what="every event acknowledged")
        record = json.loads((await js.get_last_msg(settings.stream_name, "agentops.message.rejected")).data)
        assert record["actor"] == "guardian" and record["data"]["subject"] == "agentops.deployment.changed"
        assert record["plan_id"] == "plan-forged"
        await rejected.unsubscribe()

        text = guardian.metrics.exposition().decode()
        subject = {"handler": "agentops.deployment.changed", "app_name": "guardian"}
        assert series(text, "agentops_received_messages_total", **subject) == 12  # 11 and one again
        assert series(text, "agentops_received_processed_messages_total", status="acked", **subject) == 11
        assert series(text, "agentops_received_processed_messages_total", status="nacked", **subject) == 1
        assert series(text, "agentops_messages_rejected_total", service="guardian") == 1
        assert series(text, "agentops_messages_redelivered_total", service="guardian") == 1
        assert re.search(r"agentops_received_processed_messages_duration_seconds_count\{[^}]*deployment", text)
    finally:
        await guardian.stop()
        await executor.broker.stop()
        await admin.close()


async def test_a_stopping_durable_finishes_its_event_and_leaves_the_rest_to_others(nats_url: str) -> None:
    # an ack wait far longer than the test waits: anything the stopping replica kept would come
    # back only after it, so the other replica handling the rest soon means it kept none
    settings = Settings(nats_url=nats_url, ack_wait_seconds=600)
    stopping = Messaging(settings, load_identity(settings, "guardian"))
    other = Messaging(settings, load_identity(settings, "guardian"))
    executor = Messaging(settings, load_identity(settings, "executor"))
    publish = executor.publisher(["deployment.changed"])
    first: list[str] = []
    second: list[tuple[str, int]] = []
    started, release = asyncio.Event(), asyncio.Event()

    @stopping.durable("deployment.changed")
    async def handle(event: DeploymentChanged) -> None:
        started.set()
        await release.wait()
        first.append(event.plan_id)

    @other.durable("deployment.changed")
    async def handle_too(event: DeploymentChanged) -> None:
        second.append((event.plan_id, other.deliveries()))

    admin = await connect(nats_url)
    await executor.broker.start()
    for i in range(5):  # waiting before the consumer starts: a pull takes one
        await publish(status(f"plan-{i}"))
    await stopping.start()
    try:
        await found(started.is_set, what="the first event being handled")
        info = await admin.jetstream().consumer_info(settings.stream_name, CONSUMER)
        assert info.num_ack_pending == 1  # only the one it handles is out with the stopping replica
        await other.start()
        stop = asyncio.create_task(stopping.stop_consuming())  # what the service does when it stops
        release.set()
        await asyncio.wait_for(stop, timeout=30)
        assert first == ["plan-0"]  # the one under way was finished, not dropped
        await found(lambda: len(second) == 4, timeout=60, what="the other four handled by the other replica")
        assert sorted(second) == [(f"plan-{i}", 1) for i in range(1, 5)]  # first delivered there
    finally:
        release.set()
        for m in (stopping, other):
            await m.stop()
        await executor.broker.stop()
        await admin.close()


async def test_a_durable_refuses_hostile_messages_and_keeps_consuming(nats_url: str) -> None:
    """What anyone who reaches the bus might put on the subject: bytes that are not text, NUL,
    an oversized body, an event signed by a service that does not own the type, a signed event
    altered after signing. None is handled, each is recorded, and the consumer goes on."""
    settings = Settings(nats_url=nats_url)
    guardian = Messaging(settings, load_identity(settings, "guardian"))
    executor = Messaging(settings, load_identity(settings, "executor"))
    publish = executor.publisher(["deployment.changed"])
    planner = load_identity(settings, "planner")
    handled: list[str] = []

    @guardian.durable("deployment.changed")
    async def handle(event: DeploymentChanged) -> None:
        handled.append(event.plan_id)

    good = status("plan-honest").canonical_json().encode()
    altered = good.replace(b"plan-honest", b"plan-altered")
    hostile = [
        (b"\xff\xfe\x00\x00not text", {}),
        (b'{"id": "\x00", "type": "deployment.changed"}', {}),
        (b'{"pad": "' + b"a" * 512 * 1024 + b'"}', {}),
        (status("plan-by-planner").canonical_json().encode(), None),  # signed below by the planner
        (altered, executor.identity.signer.sign(good)),  # the executor's signature over other bytes
    ]
    admin = await connect(nats_url)
    js = admin.jetstream()
    await executor.broker.start()
    await guardian.start()  # connects and runs the durable's loop
    try:
        for i, (body, signed) in enumerate(hostile):
            headers = {"Nats-Msg-Id": f"hostile-{i}", **(signed if signed is not None else planner.signer.sign(body))}
            await js.publish("agentops.deployment.changed", body, headers=headers)
        await publish(status("plan-honest"))

        await found(lambda: handled == ["plan-honest"], what="the honest event handled")
        text = guardian.metrics.exposition().decode()
        await found(
            lambda: series(guardian.metrics.exposition().decode(), "agentops_messages_rejected_total") == len(hostile),
            what="every hostile message recorded as rejected",
        )
        assert handled == ["plan-honest"], text

        async def all_acked() -> bool:
            info = await js.consumer_info(settings.stream_name, CONSUMER)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await found(all_acked, what="every message acknowledged: none left to be redelivered")
    finally:
        await guardian.stop()
        await executor.broker.stop()
        await admin.close()
