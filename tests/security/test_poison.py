"""No single message or request stops the log: whatever cannot be stored or handled as-is is
recorded in a safe form and skipped, and an ordinary command afterwards is audited in seconds
with `audit verify` still passing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any

import psycopg
import pytest

from services.auditor.verify import verify
from shared.events import CATALOG, IntentReceived, IntentReceivedData
from shared.identity import TrustedSigners
from tests.infra import IDENTITIES, connect, signed
from tests.integration.conftest import System

pytestmark = pytest.mark.integration
TRUSTED = TrustedSigners.from_file(IDENTITIES / "signers.json")


def envelope(event_type: str, plan_id: str = "poison-plan", **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "plan_id": plan_id,
        "actor": "mallory",
        "occurred_at": "2026-11-26T12:00:00Z",
        "data": {},
        **fields,
    }


def poisons(event_type: str) -> dict[str, bytes]:
    return {
        "nul": json.dumps(envelope(event_type, actor="mal\x00lory")).encode(),
        "lone-surrogate": json.dumps(envelope(event_type)).replace('"mallory"', '"mal\\ud800lory"').encode(),
        "invalid-plan-id": json.dumps(envelope(event_type, plan_id="../../etc/passwd\x00")).encode(),
        "not-utf8": b'{"id": "\xff\xfe", "type": "' + event_type.encode() + b'"}',
        "one-megabyte": json.dumps(envelope(event_type, actor="m" * 1_000_000)).encode(),
        "not-json": b"\x00\x01\x02 not an event",
    }


async def audited(database_url: str, plan_id: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        with psycopg.connect(database_url) as conn:
            if conn.execute("SELECT 1 FROM audit_events WHERE plan_id = %s", (plan_id,)).fetchone():
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"plan {plan_id} was never audited: the log is stuck")


async def an_ordinary_command_goes_through(system: System, database_url: str) -> None:
    answer = await system.command("deploy llama-3.1 8B for after-the-poison", env="staging")
    await audited(database_url, answer["plan_id"])
    await system.wait_status(answer["plan_id"], "deployed", timeout=20)
    verdict = await verify(database_url, trusted=TRUSTED)
    assert verdict.ok, verdict.describe()


async def test_poison_on_every_subject_is_recorded_and_the_log_goes_on(system: System, database_url: str) -> None:
    nc = await connect(system.settings.nats_url, "admin")
    sent = 0
    try:
        js = nc.jetstream()
        for event_type in CATALOG:
            for kind, body in poisons(event_type).items():
                await js.publish(f"agentops.{event_type}", body, headers={"Nats-Msg-Id": f"{event_type}:{kind}"})
                sent += 1
    finally:
        await nc.close()
    await an_ordinary_command_goes_through(system, database_url)
    # each one, once, by the auditor (and by every other consumer of its subject); the records
    # themselves travel the stream, so they may land after the ordinary command's events
    query = (
        "SELECT count(*) FROM audit_events WHERE type = 'message.rejected' AND payload->'data'->>'service' = 'auditor'"
    )
    for _ in range(200):
        with psycopg.connect(database_url) as conn:
            recorded = conn.execute(query).fetchone()
        if recorded and recorded[0] >= sent:
            break
        await asyncio.sleep(0.05)
    assert recorded == (sent,)
    assert (await verify(database_url, trusted=TRUSTED)).ok


async def test_a_signed_event_the_database_cannot_store_is_rejected_not_retried(
    system: System, database_url: str
) -> None:
    """Authentic, valid as a model, yet PostgreSQL's jsonb refuses a NUL: it must not stop the log."""
    event = IntentReceived(
        plan_id=f"nul-{uuid.uuid4().hex[:6]}",
        actor="alice",
        data=IntentReceivedData(command="deploy llama 3.1 8b for x\x00y", user_id="alice"),
    )
    nc = await connect(system.settings.nats_url, "gateway")
    try:
        await nc.jetstream().publish(
            event.subject,
            **{"payload": signed(event, "gateway")["message"]},
            headers=signed(event, "gateway")["headers"],
        )
    finally:
        await nc.close()
    await an_ordinary_command_goes_through(system, database_url)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload FROM audit_events WHERE type = 'message.rejected' AND plan_id = %s", (event.plan_id,)
        ).fetchall()
    assert rows and "NUL" in rows[0][0]["data"]["error"]


TEXT_FIELDS = {
    "command": lambda bad: ("POST", "/api/agent/command", {"command": f"deploy llama 3.1 8b for {bad}"}),
    "env": lambda bad: ("POST", "/api/agent/command", {"command": "deploy llama 3.1 8b for x", "env": bad}),
    "user_id": lambda bad: ("POST", "/api/agent/command", {"command": "deploy llama 3.1 8b for x", "user_id": bad}),
    "constraints.instance_type": lambda bad: (
        "POST",
        "/api/agent/command",
        {"command": "deploy llama 3.1 8b for x", "constraints": {"instance_type": f"ml.g5.{bad}"}},
    ),
    "approve.plan_id": lambda bad: ("POST", "/approve", {"plan_id": bad, "decision": "approved"}),
    "approve.reason": lambda bad: ("POST", "/approve", {"plan_id": "p", "decision": "rejected", "reason": bad}),
    "approve.approver": lambda bad: ("POST", "/approve", {"plan_id": "p", "decision": "approved", "approver": bad}),
    "decision.reason": lambda bad: ("POST", "/approvals/p/reject", {"reason": bad}),
    "body key": lambda bad: ("POST", "/api/agent/command", {"command": "deploy x", bad: 1}),
}
BAD_TEXT = {"nul": "a\x00b", "lone-surrogate": "a\ud800b", "bell": "a\x07b"}


@pytest.mark.parametrize("kind", list(BAD_TEXT))
@pytest.mark.parametrize("field", list(TEXT_FIELDS))
async def test_bad_text_in_any_field_is_a_4xx_and_publishes_nothing(system: System, field: str, kind: str) -> None:
    method, path, body = TEXT_FIELDS[field](BAD_TEXT[kind])
    before = await stream_messages(system)
    raw = json.dumps(body).encode()  # json escapes a lone surrogate as \\ud800, as a client would send it
    response = await system.client.request(
        method, path, content=raw, headers={"content-type": "application/json", **system.auth("root")}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
    assert await stream_messages(system) == before


URLS = [
    "/api/deployments/a%00b",
    "/api/deployments/a%07b/pause",
    "/api/deployments/%ff%fe",
    "/api/events?plan_id=a%00b",
    "/api/audit?actor=%ed%a0%80",  # a lone surrogate, UTF-8 encoded: not UTF-8
    "/api/audit?type=%00",
    "/history/a%0bb",
]


@pytest.mark.parametrize("url", URLS)
async def test_bad_text_in_a_path_or_query_is_a_400(system: System, url: str) -> None:
    response = await system.client.get(url, headers=system.auth("root"))
    assert (response.status_code == 400 and "not" in response.json()["detail"]) or "control" in response.json()[
        "detail"
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [("Last-Event-ID", b"1\x07"), ("Idempotency-Key", b"k\x7f"), ("Last-Event-ID", b"\xff\xfe"), ("X-Thing", b"\x01")],
)
async def test_bad_text_in_a_header_is_a_400(system: System, name: str, value: bytes) -> None:
    response = await system.client.get(
        "/api/deployments", headers=[(name.encode(), value), *system.auth("root").items()]
    )
    assert response.status_code == 400, response.text


async def test_an_over_long_chunked_body_is_413(system: System) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 10_000

    response = await system.client.post(
        "/api/agent/command", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text


async def stream_messages(system: System) -> int:
    nc = await connect(system.settings.nats_url)
    try:
        return int((await nc.jetstream().stream_info("AGENTOPS")).state.messages)
    finally:
        await nc.close()


async def test_an_event_the_projection_cannot_fold_is_rejected_and_the_log_goes_on(
    system: System, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.auditor.store as store

    real = store.PLANS.fold

    def fragile(row: Any, event: Any, seq: int) -> Any:
        if event.plan_id.startswith("boom"):
            raise KeyError("a fold that cannot take this event")
        return real(row, event, seq)

    monkeypatch.setattr(store, "PLANS", dataclasses.replace(store.PLANS, fold=fragile))
    event = IntentReceived(
        plan_id="boom-1", actor="alice", data=IntentReceivedData(command="deploy x", user_id="alice")
    )
    nc = await connect(system.settings.nats_url, "gateway")
    try:
        sent = signed(event, "gateway")
        await nc.jetstream().publish(event.subject, sent["message"], headers=sent["headers"])
    finally:
        await nc.close()
    await an_ordinary_command_goes_through(system, database_url)
    query = "SELECT payload FROM audit_events WHERE plan_id = 'boom-1' AND payload->'data'->>'subject' = %s"
    rows: list[Any] = []
    for _ in range(200):
        with psycopg.connect(database_url) as conn:
            if conn.execute(query, ("agentops.intent.received",)).fetchone():
                rows = conn.execute("SELECT payload FROM audit_events WHERE plan_id = 'boom-1'").fetchall()
                break
        await asyncio.sleep(0.05)
    # the intent (and what the planner made of it) are recorded as rejections, nothing else of them
    assert {r[0]["type"] for r in rows} == {"message.rejected"}
    intent = [r[0]["data"] for r in rows if r[0]["data"]["subject"] == "agentops.intent.received"]
    assert intent and "KeyError" in intent[0]["error"]
