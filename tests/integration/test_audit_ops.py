"""The log as evidence: tampering found at the right row, anchors, roles, rebuild, export, replay."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.auditor.anchor import anchor_now, read_file
from services.auditor.operations import rebuild
from services.auditor.verify import verify
from shared.db import make_engine
from shared.settings import Settings
from tests.infra import SIGNERS, connect, login, producer, relinked_as_chain1
from tests.integration.conftest import System
from tests.integration.test_audit_log import intent, record

pytestmark = pytest.mark.integration


def superuser(database_url: str, *statements: str) -> None:
    """What an attacker with the database owner's password does, bypassing the guard trigger."""
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete")


async def anchored(database_url: str, file: Path) -> None:
    engine = make_engine(database_url)
    try:
        await anchor_now(engine, file, Settings(nats_url=""), "cli")
    finally:
        await engine.dispose()


async def test_deleting_a_middle_row_is_named_as_a_deletion(database_url: str) -> None:
    await record(database_url, *(intent() for _ in range(5)))
    superuser(database_url, "DELETE FROM audit_events WHERE seq = 3")
    verdict = await verify(database_url)
    assert (verdict.ok, verdict.broken_seq) == (False, 4) and "deleted" in verdict.problem


async def test_swapping_two_rows_is_named_as_reordering(database_url: str) -> None:
    await record(database_url, *(intent() for _ in range(5)))
    swap = (
        "UPDATE audit_events SET seq = -seq WHERE seq IN (2, 3)",
        "UPDATE audit_events SET seq = 3 WHERE seq = -2",
        "UPDATE audit_events SET seq = 2 WHERE seq = -3",
    )
    superuser(database_url, *swap)
    verdict = await verify(database_url)
    assert (verdict.ok, verdict.broken_seq) == (False, 2) and "reordered" in verdict.problem


async def test_a_truncated_tail_verifies_alone_but_not_against_the_anchor(database_url: str, tmp_path: Path) -> None:
    await record(database_url, *(intent() for _ in range(6)))
    await anchored(database_url, tmp_path / "anchors.jsonl")
    superuser(database_url, "DELETE FROM audit_events WHERE seq > 4")
    assert (await verify(database_url)).ok  # the chain that is left is consistent
    verdict = await verify(database_url, anchors=read_file(tmp_path / "anchors.jsonl"))
    assert not verdict.ok and "truncated" in verdict.problem and verdict.broken_seq == 5


async def test_a_consistent_rewrite_of_the_whole_table_is_caught_by_the_anchor(
    database_url: str, tmp_path: Path
) -> None:
    await record(database_url, *(intent() for _ in range(4)))
    await anchored(database_url, tmp_path / "anchors.jsonl")
    # Rewrite every row's actor and recompute the whole chain, as a careful forger would: unable
    # to sign, they fall back to the unsigned chain-1 rule for every row. Only the anchor (kept
    # outside the table) tells.
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT seq, payload FROM audit_events ORDER BY seq").fetchall()
    for _, payload in rows:
        payload["actor"] = "mallory"
    statements = relinked_as_chain1(rows, "0" * 64, also=", actor = 'mallory'")
    superuser(database_url, *statements)
    alone = await verify(database_url)
    assert alone.ok and alone.legacy == 4  # says plainly that nothing in it is signed
    verdict = await verify(database_url, anchors=read_file(tmp_path / "anchors.jsonl"))
    assert not verdict.ok and "rewritten" in verdict.problem and verdict.broken_seq == 4


@pytest.mark.parametrize(
    ("role", "statement", "allowed"),
    [
        (
            "agentops_auditor",
            "INSERT INTO audit_events (event_id, type, plan_id, actor, occurred_at, recorded_at, "
            "payload, prev_hash, hash) VALUES ('x', 't', 'p', 'a', now(), now(), '{}', 'x', 'x')",
            True,
        ),
        ("agentops_auditor", "UPDATE audit_events SET actor = 'x'", False),
        ("agentops_auditor", "DELETE FROM audit_events", False),
        ("agentops_auditor", "TRUNCATE audit_events", False),
        ("agentops_auditor", "UPDATE deployments SET status = 'deployed'", True),
        ("agentops_reader", "SELECT count(*) FROM audit_events", True),
        (
            "agentops_reader",
            "INSERT INTO audit_events (event_id, type, plan_id, actor, occurred_at, recorded_at, "
            "payload, prev_hash, hash) VALUES ('y', 't', 'p', 'a', now(), now(), '{}', 'x', 'x')",
            False,
        ),
        ("agentops_reader", "UPDATE deployments SET status = 'deployed'", False),
        ("agentops_reader", "DELETE FROM approvals", False),
    ],
)
async def test_each_role_can_do_only_its_part(database_url: str, role: str, statement: str, allowed: bool) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"SET ROLE {role}")
        if allowed:
            conn.execute(statement)
        else:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def projection(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        deployments = conn.execute(
            "SELECT plan_id, status, user_id, intent, env, artifact, evidence, validation_errors, details, created_at, "
            "updated_at, last_seq FROM deployments ORDER BY plan_id"
        ).fetchall()
        approvals = conn.execute("SELECT * FROM approvals ORDER BY plan_id").fetchall()
    return deployments + approvals


async def test_rebuilt_projections_equal_the_live_ones(system: System, database_url: str) -> None:
    staged = (await system.command("deploy llama-3.1 8B for rebuild-a", env="staging"))["plan_id"]
    prod = (await system.command("deploy mistral 7b for rebuild-b", env="prod"))["plan_id"]
    await system.command("deploy llama 3.1 70b for rebuild-c with budget $2/hour")
    await system.wait_status(staged, "deployed")
    await system.client.post(f"/api/deployments/{staged}/pause")
    await system.wait_status(staged, "paused")
    await system.wait_status(prod, "pending_approval")
    await system.settled()
    live = projection(database_url)
    engine = make_engine(database_url)
    try:
        count = await rebuild(engine)
    finally:
        await engine.dispose()
    assert count > 10
    assert projection(database_url) == live


def agentops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_export_lets_an_outsider_verify_the_chain_in_a_few_lines(
    system: System, database_url: str, tmp_path: Path
) -> None:
    plan_id = (await system.command("deploy llama-3.1 8B for export-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    await system.settled()
    env = dict(os.environ, DATABASE_URL=database_url, AGENTOPS_HOME=str(tmp_path))
    jsonl = agentops(env, "audit", "export", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    keys = json.loads(agentops(env, "audit", "keys").stdout)["keys"]
    # The outsider's code: the README's recipe, nothing from this project (but `cryptography`).
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def public_key(nkey: str) -> Ed25519PublicKey:  # a NATS public key: base32 of 1 prefix byte, key, 2 crc bytes
        return Ed25519PublicKey.from_public_bytes(base64.b32decode(nkey + "=" * (-len(nkey) % 8))[1:-2])

    prev = "0" * 64
    lines = jsonl.stdout.splitlines()
    for line in lines:
        row = json.loads(line)
        assert row["prev_hash"] == prev and row["chain_version"] == 2
        columns = json.loads(row["columns"])
        assert all(columns[k] == row[k] for k in ("seq", "event_id", "type", "plan_id", "actor", "signer"))
        digest = hashlib.sha256(f"{prev}|2|{row['columns']}|{row['event']}".encode()).hexdigest()
        assert digest == row["hash"]
        assert row["signer_key"] in keys[row["signer"]]
        signature = base64.urlsafe_b64decode(row["signature"] + "=" * (-len(row["signature"]) % 4))
        public_key(row["signer_key"]).verify(signature, row["event"].encode())  # raises if forged
        prev = row["hash"]
    assert len(lines) == 5
    csv_out = agentops(env, "audit", "export", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("seq,event_id,type") and len(csv_out) == 6
    verified = agentops(env, "audit", "verify")
    assert verified.returncode == 0 and f"OK: 5 events, head {prev}" in verified.stdout


async def test_replay_republishes_without_triggering_anything(
    system: System, database_url: str, tmp_path: Path
) -> None:
    plan_id = (await system.command("deploy llama-3.1 8B for replay-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    await system.settled()
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT count(*) FROM audit_events").fetchone()
    nc = await connect(system.settings.nats_url, "cli")
    replayed: list[str] = []

    async def got(msg: Any) -> None:
        replayed.append(msg.subject)

    sub = await nc.subscribe("agentops.replay.>", cb=got)
    env = dict(os.environ, DATABASE_URL=database_url, NATS_URL=system.settings.nats_url, AGENTOPS_HOME=str(tmp_path))
    printed = agentops(env, "audit", "replay", "--plan", plan_id, "--type", "deployment.*")
    assert [json.loads(line)["type"] for line in printed.stdout.splitlines()] == [
        "deployment.requested",
        "deployment.status",
        "deployment.status",
    ]
    published = await asyncio.to_thread(agentops, env, "audit", "replay", "--plan", plan_id, "--publish")
    assert published.returncode == 0 and "re-published 5 events" in published.stdout
    for _ in range(50):
        if len(replayed) == 5:
            break
        await asyncio.sleep(0.05)
    await sub.unsubscribe()
    await nc.close()
    assert replayed[0] == "agentops.replay.intent.received" and len(replayed) == 5
    await system.settled()  # the auditor and notifier have seen the replays; nothing reacted
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == before
    assert (await system.plan(plan_id))["status"] == "deployed"
    assert agentops(env, "audit", "replay").returncode == 2


async def test_anchor_command_and_verify_with_anchors(system: System, database_url: str, tmp_path: Path) -> None:
    await system.command("deploy llama-3.1 8B for anchor-bot", env="staging")
    await system.settled()
    env = dict(os.environ, DATABASE_URL=database_url, NATS_URL=system.settings.nats_url, AGENTOPS_HOME=str(tmp_path))
    made = agentops(env, "audit", "anchor")
    assert made.returncode == 0, made.stderr
    anchor = json.loads(made.stdout)
    assert anchor["seq"] >= 1 and len(anchor["hash"]) == 64
    assert read_file(tmp_path / "audit-anchors.jsonl")[0].hash == anchor["hash"]
    checked = agentops(env, "audit", "verify", "--anchors")
    assert checked.returncode == 0 and "checked against 2 anchors" in checked.stdout  # the file and the KV bucket


async def test_batched_appends_chain_and_project_like_single_ones(system: System, database_url: str) -> None:
    from services.auditor.store import Signed, append_many
    from shared.events import parse_event

    plan_id = (await system.command("deploy llama-3.1 8B for batch-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    await system.settled()
    with psycopg.connect(database_url) as conn:
        payloads = [r[0] for r in conn.execute("SELECT payload FROM audit_events ORDER BY seq").fetchall()]
    # the same plan's events again under new ids, as one batch with a repeat inside it
    events = [parse_event(json.dumps(p | {"id": str(uuid.uuid4()), "plan_id": "batch-copy"})) for p in payloads]
    engine = make_engine(login(database_url, "auditor"))
    try:
        batch = [Signed.of(e, SIGNERS[producer(e.type)]) for e in events]
        assert await append_many(engine, [*batch, batch[0]]) == len(events)
        assert await append_many(engine, batch) == 0  # all seen
    finally:
        await engine.dispose()
    assert (await verify(database_url)).ok
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT plan_id, status, artifact, details->'sagemaker_calls' FROM deployments ORDER BY plan_id"
        ).fetchall()
    assert rows[0][1:] == rows[1][1:] and {rows[0][0], rows[1][0]} == {plan_id, "batch-copy"}


async def test_events_tail_follows_the_live_stream(system: System, tmp_path: Path) -> None:
    env = dict(os.environ, NATS_URL=system.settings.nats_url, AGENTOPS_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.runtime.cli",
        "events",
        "tail",
        "--type",
        "plan.*",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "following agentops.plan.>" in (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        plan_id = (await system.command("deploy llama-3.1 8B for tail-bot", env="staging"))["plan_id"]
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
    finally:
        proc.terminate()
        await proc.wait()
    assert line["subject"] == "agentops.plan.proposed" and line["plan_id"] == plan_id
