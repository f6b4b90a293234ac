"""Webhooks to a local receiver: signed, retried with backoff, and a failure event after the last try."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.notifier.webhooks import Target, verify_signature
from services.runtime.embedded import EmbeddedNats
from services.runtime.messaging import NOTHING
from shared.identity import durable_name
from tests.fakes import FakeHttp, serve
from tests.infra import IDENTITIES, connect, ensure_stream_as_admin, service_app
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration
SECRET = "whsec_test_0123456789"


@pytest.fixture
async def notified(nats_url: str, database_url: str) -> AsyncIterator[tuple[System, FakeHttp]]:
    statuses = itertools.chain([500, 503], itertools.repeat(200))
    fake = FakeHttp(
        {
            "POST /hooks/ok": lambda body: (200, {"ok": True}),
            "POST /hooks/flaky": lambda body: (next(statuses), {}),
            "POST /hooks/down": lambda body: (500, {"error": "down"}),
        }
    )
    with serve(fake):
        settings = system_settings(nats_url, database_url, notifier_backoff_seconds=0.01, notifier_max_attempts=3)
        targets = [
            Target(name="ok", url=f"{fake.url}/hooks/ok", secret=SECRET),
            Target(name="flaky", url=f"{fake.url}/hooks/flaky", secret=SECRET, events=["approval.requested"]),
            Target(name="down", url=f"{fake.url}/hooks/down", secret=SECRET, events=["deployment.status:deployed"]),
        ]
        async with running(settings) as client, service_app("notifier", settings, targets=targets):
            yield System(client, settings), fake


def hits(fake: FakeHttp, path: str) -> list[Any]:
    return [r for r in fake.requests if r.path == path]


def rejections(database_url: str) -> set[tuple[str, str]]:
    """(service, subject) of every `message.rejected` in the log."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload->'data'->>'service', payload->'data'->>'subject' FROM audit_events "
            "WHERE type = 'message.rejected'"
        ).fetchall()
    return {(r[0], r[1]) for r in rows}


async def forge(nats_url: str, subject: str) -> None:
    """An unsigned message on `subject`, published with the admin identity (anyone who reaches
    the broker with rights to publish there)."""
    nc = await connect(nats_url, "admin")
    try:
        body = json.dumps({"type": "deployment.status", "plan_id": "forged", "actor": "mallory"}).encode()
        await nc.jetstream().publish(subject, body, headers={"Nats-Msg-Id": f"forged:{subject}"})
    finally:
        await nc.close()


async def eventually(check: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_deliveries_are_signed_slack_bodies_with_the_full_event(notified: tuple[System, FakeHttp]) -> None:
    system, fake = notified
    plan_id = (await system.command("deploy llama-3.1 8B for hook-bot", env="prod"))["plan_id"]
    await eventually(lambda: hits(fake, "/hooks/ok"))
    (seen,) = hits(fake, "/hooks/ok")
    assert verify_signature(SECRET, seen.headers["x-agentops-signature"], seen.raw)
    assert not verify_signature("wrong-secret", seen.headers["x-agentops-signature"], seen.raw)
    assert not verify_signature(SECRET, seen.headers["x-agentops-signature"], seen.raw + b" ")
    assert seen.body["event"]["type"] == "approval.requested" and seen.body["event"]["plan_id"] == plan_id
    assert "asks to deploy meta-llama/Llama-3.1-8B-Instruct" in seen.body["text"] and "prod" in seen.body["text"]
    assert seen.headers["x-agentops-event-id"] == seen.body["event"]["id"]


async def test_a_failing_receiver_is_retried_until_it_answers(notified: tuple[System, FakeHttp]) -> None:
    system, fake = notified
    await system.command("deploy llama-3.1 8B for flaky-bot", env="prod")
    await eventually(lambda: len(hits(fake, "/hooks/flaky")) == 3)
    await system.settled()  # the notifier is done with every event: nothing more is coming
    assert len(hits(fake, "/hooks/flaky")) == 3  # 500, 503, then 200: no more
    bodies = {json.dumps(r.body, sort_keys=True) for r in hits(fake, "/hooks/flaky")}
    assert len(bodies) == 1  # the same delivery each time


async def test_giving_up_is_recorded_as_notification_failed(
    notified: tuple[System, FakeHttp], database_url: str
) -> None:
    system, fake = notified
    plan_id = (await system.command("deploy llama-3.1 8B for down-bot", env="staging"))["plan_id"]
    await eventually(lambda: len(hits(fake, "/hooks/down")) == 3)

    def failed() -> list[Any]:
        with psycopg.connect(database_url) as conn:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT payload FROM audit_events WHERE type = 'notification.failed' AND plan_id = %s", (plan_id,)
                ).fetchall()
            ]

    await eventually(lambda: bool(failed()))
    (event,) = failed()
    assert event["data"]["target"] == "down" and event["data"]["attempts"] == 3
    assert event["data"]["event_type"] == "deployment.status" and "HTTP 500" in event["data"]["error"]


async def test_an_event_no_target_wants_is_not_even_read(notified: tuple[System, FakeHttp], database_url: str) -> None:
    """The notifier reads (decodes, checks the signature of) only the types some target asked for:
    a forged message of another type leaves no trace of it there (the auditor still records it),
    while one of a wanted type is refused and recorded by the notifier, as by every consumer."""
    system, _ = notified
    nc = await connect(system.settings.nats_url, "admin")
    try:
        js = nc.jetstream()
        for event_type in ("intent.received", "plan.rejected"):  # no target wants the first
            body = json.dumps({"type": event_type, "plan_id": "forged", "actor": "mallory"}).encode()
            await js.publish(f"agentops.{event_type}", body, headers={"Nats-Msg-Id": f"forged:{event_type}"})
    finally:
        await nc.close()

    await eventually(lambda: ("notifier", "agentops.plan.rejected") in rejections(database_url))
    await system.settled()  # every consumer, the notifier's and the auditor's, has handled everything
    assert ("auditor", "agentops.intent.received") in rejections(database_url)
    assert ("notifier", "agentops.intent.received") not in rejections(database_url)


async def test_the_broker_delivers_the_notifier_only_what_its_targets_want(database_url: str, tmp_path: Path) -> None:
    """The notifier's consumer is filtered to the types its targets asked for (and their replays),
    none at all when there is no target, so the broker sends it nothing else. A change of targets
    narrows or widens the same durable where it stands: what was published while the notifier
    was away is delivered, the stream's earlier history is not. (Its own nats-server: filtering
    a consumer by several subjects needs nats-server 2.10, and AGENTOPS_TEST_NATS_URL may be older.)"""
    fake = FakeHttp({"POST /hooks/approvals": lambda body: (200, {}), "POST /hooks/deployed": lambda body: (200, {})})
    consumer = durable_name("notifier", ">")

    async def state() -> Any:
        nc = await connect(nats_url, "admin")
        try:
            return await nc.jetstream().consumer_info("AGENTOPS", consumer)
        finally:
            await nc.close()

    server = EmbeddedNats(tmp_path / "nats", identities=IDENTITIES).start()
    nats_url = server.url
    try:
        with serve(fake):
            await ensure_stream_as_admin(nats_url)
            approvals = Target(
                name="approvals", url=f"{fake.url}/hooks/approvals", secret=SECRET, events=["approval.requested"]
            )
            deployed = Target(
                name="deployed", url=f"{fake.url}/hooks/deployed", secret=SECRET, events=["deployment.status:deployed"]
            )
            settings = system_settings(nats_url, database_url)
            async with running(settings) as client:
                system = System(client, settings)
                async with service_app("notifier", settings, targets=[]):
                    early = (await system.command("deploy llama-3.1 8B for early-bot", env="staging"))["plan_id"]
                    await system.wait_status(early, "deployed")
                    await system.settled()
                    info = await state()
                    assert info.config.filter_subjects == [NOTHING]
                    assert info.delivered.consumer_seq == 0  # not one message sent to it
                    # the one subject that filter matches, which no service may publish on: what
                    # arrives there is acknowledged unread, and the notifier goes on
                    await forge(nats_url, NOTHING)
                    await system.settled()
                    info = await state()
                    assert info.delivered.consumer_seq == 1 and info.num_ack_pending == 0
                    assert not {r for r in rejections(database_url) if r[0] == "notifier"}
                async with service_app("notifier", settings, targets=[approvals]):
                    info = await state()
                    assert info.config.filter_subjects == [
                        "agentops.approval.requested",
                        "agentops.replay.approval.requested",
                    ]
                    waiting = (await system.command("deploy llama-3.1 8B for gated-bot", env="prod"))["plan_id"]
                    await eventually(lambda: hits(fake, "/hooks/approvals"))
                    await system.settled()
                    assert [r.body["event"]["plan_id"] for r in hits(fake, "/hooks/approvals")] == [waiting]
                # deployed while no notifier runs, then a target that wants deployments
                late = (await system.command("deploy llama-3.1 8B for late-bot", env="staging"))["plan_id"]
                await system.wait_status(late, "deployed")
                async with service_app("notifier", settings, targets=[deployed]):
                    await eventually(lambda: hits(fake, "/hooks/deployed"))
                    await system.settled()
                    assert [r.body["event"]["plan_id"] for r in hits(fake, "/hooks/deployed")] == [late]  # not early
                    # a forged replay of a wanted type is delivered to the notifier, which refuses it
                    await forge(nats_url, "agentops.replay.deployment.status")
                    await eventually(
                        lambda: ("notifier", "agentops.replay.deployment.status") in rejections(database_url)
                    )
                    await system.settled()
                    assert len(hits(fake, "/hooks/deployed")) == 1
                assert len(hits(fake, "/hooks/approvals")) == 1
    finally:
        server.stop()
