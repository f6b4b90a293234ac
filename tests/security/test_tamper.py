"""The audit row is covered whole: changing any column of any row, as a superuser with the
append-only trigger out of the way, makes `audit verify` fail at that row."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from services.auditor.store import Signed, append
from services.auditor.verify import verify
from shared.db import make_engine
from shared.events import IntentReceived, IntentReceivedData
from shared.identity import TrustedSigners
from tests.infra import IDENTITIES, SIGNERS, login, relinked_as_chain1, write_chain1_row

pytestmark = pytest.mark.integration

TRUSTED = TrustedSigners.from_file(IDENTITIES / "signers.json")
OTHER_KEY = SIGNERS["planner"].public_key

# column -> the SQL expression an attacker sets it to (on row 3 of 5)
EDITS = {
    "event_id": f"'{uuid.uuid4()}'",
    "type": "'plan.failed'",
    "plan_id": "'someone-else'",
    "actor": "'mallory'",
    "occurred_at": "occurred_at - interval '1 hour'",
    "recorded_at": "recorded_at + interval '1 second'",
    "payload": "jsonb_set(payload, '{data,command}', '\"deploy llama 3.1 70b for chatbot-x\"')",
    "prev_hash": "repeat('f', 64)",
    "hash": "repeat('0', 64)",
    "signer": "'planner'",
    "signer_key": f"'{OTHER_KEY}'",
    "signature": "(SELECT signature FROM audit_events WHERE seq = 1)",
    "chain_version": "1",
    # the signed text the hash covers, alone, and with the JSONB changed to say the same
    "canonical": "replace(canonical, 'app-2', 'app-9')",
    "canonical, payload": (
        "replace(canonical, 'app-2', 'app-9'), payload = replace(canonical, 'app-2', 'app-9')::jsonb"
    ),
}


async def five_rows(database_url: str) -> None:
    engine = make_engine(login(database_url, "auditor"))
    try:
        for i in range(5):
            event = IntentReceived(
                plan_id=f"p{i}",
                actor="alice",
                data=IntentReceivedData(command=f"deploy llama 3.1 8b for app-{i}", user_id="alice"),
            )
            await append(engine, Signed.of(event, SIGNERS["gateway"]))
    finally:
        await engine.dispose()


def as_superuser(database_url: str, statement: str) -> None:
    """Triggers off for this session, as `session_replication_role = replica` does."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement)  # type: ignore[arg-type]


async def test_an_untouched_log_verifies_with_every_signature(database_url: str) -> None:
    await five_rows(database_url)
    verdict = await verify(database_url, trusted=TRUSTED)
    assert verdict.ok and verdict.count == 5 and verdict.legacy == 0


def in_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast walk split as on a long log (into ranges (0, 3] and (3, 5], pages of 2 rows)."""
    import services.auditor.verify as walk

    monkeypatch.setattr(walk, "PAGE", 2)
    assert walk.ranges(0, 5, walk.PARTS) == [(0, 3), (3, 5)]


@pytest.mark.parametrize(
    "walk", ["every-signature", "stored-text", "stored-text-in-ranges"], ids=lambda walk: str(walk)
)
@pytest.mark.parametrize("column", list(EDITS))
async def test_each_column_changed_is_caught_at_that_row(
    database_url: str, column: str, walk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every walk: with signatures (every event decoded), and the fast one that hashes the signed
    text as stored and has the database check that the JSONB and the columns say the same, in one
    range and in several at once (row 3 ends the first)."""
    signatures = walk == "every-signature"
    if walk.endswith("in-ranges"):
        in_ranges(monkeypatch)
    await five_rows(database_url)
    first = column.split(",")[0]  # "canonical, payload": the value sets the second column itself
    as_superuser(database_url, f"UPDATE audit_events SET {first} = {EDITS[column]} WHERE seq = 3")
    verdict = await verify(database_url, trusted=TRUSTED if signatures else None)
    assert not verdict.ok and verdict.broken_seq == 3, verdict.describe()
    assert (await verify(database_url, until=2)).ok  # the rows before it still verify


async def test_a_renumbered_row_is_caught_where_the_chain_breaks(database_url: str) -> None:
    await five_rows(database_url)
    as_superuser(database_url, "UPDATE audit_events SET seq = 99 WHERE seq = 3")
    verdict = await verify(database_url, trusted=TRUSTED)
    assert not verdict.ok and verdict.broken_seq == 4


async def test_a_row_signed_by_a_key_nobody_trusts_fails_verify(database_url: str) -> None:
    """A forger with database access signs a row with a key of their own: not a service's key."""
    from shared.identity import Signer, new_seed

    await five_rows(database_url)
    intruder = Signer("gateway", new_seed())
    engine = make_engine(login(database_url, "auditor"))
    try:
        event = IntentReceived(plan_id="x", actor="bob", data=IntentReceivedData(command="deploy x", user_id="bob"))
        await append(engine, Signed.of(event, intruder))
    finally:
        await engine.dispose()
    verdict = await verify(database_url, trusted=TRUSTED)
    assert not verdict.ok and verdict.broken_seq == 6 and "unknown key" in verdict.problem


async def test_a_log_from_before_signing_keeps_verifying_and_says_what_it_holds(database_url: str) -> None:
    """Rows written by chain 1 (before migration 0003) verify by their own rule; new rows follow."""
    write_chain1_row(database_url)
    await five_rows(database_url)
    verdict = await verify(database_url, trusted=TRUSTED)
    assert verdict.ok and verdict.count == 6 and verdict.legacy == 1
    assert "1 older chain-1 rows carry no signature" in verdict.describe()


@pytest.mark.parametrize("split", [False, True], ids=["one-range", "in-ranges"])
async def test_an_untouched_log_verifies_from_the_stored_signed_text(
    database_url: str, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast walk decides by itself on rows that keep their signed text (no full walk), in one
    range or in several walked at once."""
    from services.auditor.chain import GENESIS_HASH
    from services.auditor.verify import fast

    if split:
        in_ranges(monkeypatch)
    await five_rows(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            verdict = await fast(conn, 0, None, GENESIS_HASH)
            since_two = await fast(conn, 2, None, (await verify(database_url, until=2)).head_hash)
    finally:
        await engine.dispose()
    assert verdict is not None and verdict.ok and verdict.count == 5, verdict
    assert since_two is not None and since_two.ok and since_two.count == 3
    assert verdict.head_hash == (await verify(database_url, trusted=TRUSTED)).head_hash


@pytest.mark.parametrize("split", [False, True], ids=["one-range", "in-ranges"])
async def test_chain1_rows_after_chain2_rows_fail_even_in_a_range_of_their_own(
    database_url: str, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forger who cannot sign rewrites the tail as unsigned chain-1 rows, consistently linked:
    the walk that sees rows 4 and 5 alone (its own range) must still know rows 1-3 were chain 2."""
    if split:
        in_ranges(monkeypatch)
    await five_rows(database_url)
    with psycopg.connect(database_url) as conn:
        prev = conn.execute("SELECT hash FROM audit_events WHERE seq = 3").fetchone()[0]  # type: ignore[index]
        rows = conn.execute("SELECT seq, payload FROM audit_events WHERE seq > 3 ORDER BY seq").fetchall()
    statements = relinked_as_chain1(rows, prev, also=", canonical = NULL, signer_key = NULL")
    as_superuser(database_url, "; ".join(statements))
    verdict = await verify(database_url)
    assert not verdict.ok and verdict.broken_seq == 4 and "chain-1 row after chain-2" in verdict.problem, (
        verdict.describe()
    )
