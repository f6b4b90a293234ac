"""The audit log is append-only, hash-chained, and each event is recorded exactly once."""

from __future__ import annotations

import asyncio
import json
import uuid

import psycopg
import pytest

from services.auditor.store import Signed, append
from services.auditor.verify import verify
from shared.db import make_engine
from shared.events import IntentReceived, IntentReceivedData
from shared.settings import Settings
from tests.infra import SIGNERS, connect, for_service, login, service_app, signed

pytestmark = pytest.mark.integration


def intent(plan_id: str | None = None, command: str = "deploy llama 3.1 8b for chatbot-x") -> IntentReceived:
    return IntentReceived(
        plan_id=plan_id or uuid.uuid4().hex, actor="alice", data=IntentReceivedData(command=command, user_id="alice")
    )


async def record(database_url: str, *events: IntentReceived) -> None:
    engine = make_engine(login(database_url, "auditor"))
    try:
        for event in events:
            await append(engine, Signed.of(event, SIGNERS["gateway"]))
    finally:
        await engine.dispose()


async def test_database_refuses_update_delete_and_truncate_of_the_log(database_url: str) -> None:
    await record(database_url, intent(), intent())
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events", "TRUNCATE audit_events"):
        with (
            psycopg.connect(database_url) as conn,
            pytest.raises(psycopg.Error, match=r"append-only|permission denied"),
        ):
            conn.execute(statement)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (2,)


async def test_auditor_role_has_no_update_or_delete_grant(database_url: str) -> None:
    await record(database_url, intent())
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE agentops_auditor")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")


async def test_a_row_edited_behind_the_triggers_back_fails_verify_at_that_row(database_url: str) -> None:
    await record(database_url, *(intent() for _ in range(5)))
    assert (await verify(database_url)).ok
    with psycopg.connect(database_url) as conn:  # a superuser, disabling the guard
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
        conn.execute("UPDATE audit_events SET payload = jsonb_set(payload, '{actor}', '\"mallory\"') WHERE seq = 3")
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete")

    verdict = await verify(database_url)

    assert not verdict.ok
    assert verdict.broken_seq == 3
    assert "edited" in verdict.problem


async def test_a_deleted_middle_row_fails_verify_at_the_next_row(database_url: str) -> None:
    await record(database_url, *(intent() for _ in range(5)))
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
        conn.execute("DELETE FROM audit_events WHERE seq = 2")

    verdict = await verify(database_url)

    assert not verdict.ok and verdict.broken_seq == 3


async def test_duplicate_delivery_records_one_row_and_one_state_change(nats_url: str, database_url: str) -> None:
    settings = Settings(nats_url=nats_url, database_url=database_url)
    event = intent()
    async with service_app("auditor", for_service(settings, "auditor")):
        nc = await connect(nats_url, "gateway")
        js = nc.jetstream()
        sent = signed(event, "gateway")
        body, headers = sent["message"], sent["headers"]
        # Twice through the broker with the same Nats-Msg-Id (deduplicated by the server) ...
        for _ in range(2):
            await js.publish(event.subject, body, headers=headers)
        # ... and once more with another message id, as a redelivery beyond the dedup window would be.
        await js.publish(event.subject, body, headers={**headers, "Nats-Msg-Id": uuid.uuid4().hex})
        await nc.close()
        await drained(nats_url)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events WHERE event_id = %s", (str(event.id),)).fetchone() == (
            1,
        )
        row = conn.execute("SELECT status, last_seq FROM deployments WHERE plan_id = %s", (event.plan_id,)).fetchone()
    assert row == ("planning", 1)
    assert (await verify(database_url)).count == 1


async def drained(nats_url: str) -> None:
    for _ in range(200):
        if await js_consumer_pending(nats_url) == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the auditor did not drain its consumer")


async def js_consumer_pending(nats_url: str) -> int:
    nc = await connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info("AGENTOPS", "auditor-all")
        return int(info.num_pending + info.num_ack_pending)
    finally:
        await nc.close()


async def test_undecodable_message_is_recorded_as_rejected_and_not_retried(nats_url: str, database_url: str) -> None:
    settings = Settings(nats_url=nats_url, database_url=database_url)
    async with service_app("auditor", for_service(settings, "auditor")):
        nc = await connect(nats_url, "gateway")
        await nc.jetstream().publish("agentops.intent.received", b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
        await nc.close()
        for _ in range(100):
            with psycopg.connect(database_url) as conn:
                rows = conn.execute("SELECT payload FROM audit_events WHERE type = 'message.rejected'").fetchall()
            if rows:
                break
            await asyncio.sleep(0.05)
        assert await js_consumer_pending(nats_url) == 0
    assert len(rows) == 1
    data = rows[0][0]["data"]
    assert data["service"] == "auditor" and data["subject"] == "agentops.intent.received"
    assert "{not json" in data["body_excerpt"]
    json.dumps(data)


async def test_a_write_that_dies_mid_transaction_leaves_no_gap_in_seq(database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A gap in seq reads like a deleted row, so a rolled-back append must not burn a number
    (kill -9 of the auditor mid-transaction did, before seqs were assigned under the chain lock)."""
    import services.auditor.store as store

    engine = make_engine(login(database_url, "auditor"))
    try:
        await append(engine, Signed.of(intent(command="first"), SIGNERS["gateway"]))
        real = store._project_all

        async def dies(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            raise ConnectionResetError("the auditor died mid-write")

        monkeypatch.setattr(store, "_project_all", dies)  # after the row, before the commit
        with pytest.raises(ConnectionResetError):
            await append(engine, Signed.of(intent(command="lost"), SIGNERS["gateway"]))
        monkeypatch.setattr(store, "_project_all", real)
        await append(engine, Signed.of(intent(command="second"), SIGNERS["gateway"]))
    finally:
        await engine.dispose()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT seq, payload->'data'->>'command' FROM audit_events ORDER BY seq").fetchall()
    assert rows == [(1, "first"), (2, "second")]
    assert (await verify(database_url)).ok
