"""`agentops audit verify`: walk the chain from the database, and check it against the anchors."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auditor.anchor import Anchor
from services.auditor.chain import CHAIN_VERSION, GENESIS_HASH, ChainRow, Verdict, check_row, verify_rows
from services.auditor.store import chain_rows
from shared.db import audit_events, make_engine
from shared.identity import TrustedSigners


async def verify(
    url: str,
    since: int = 0,
    until: int | None = None,
    anchors: list[Anchor] | None = None,
    trusted: TrustedSigners | None = None,
) -> Verdict:
    """Walk the chain (links, every column, signatures when `trusted` is given)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            start = GENESIS_HASH
            if since > 0:
                start = (
                    await conn.scalar(select(audit_events.c.hash).where(audit_events.c.seq == since)) or GENESIS_HASH
                )
            verdict = None if trusted is not None else await fast(conn, since, until, start)
            if verdict is None:  # signatures to check, or something to explain: every row in full
                verdict = verify_rows([row async for row in chain_rows(conn, since, until)], start, trusted)
            if not verdict.ok:
                return await _explain(conn, verdict)
            if anchors:
                return await _against_anchors(conn, verdict, anchors)
            return verdict
    finally:
        await engine.dispose()


# Rows as the hash needs them: the columns' canonical JSON (services/auditor/chain.py
# `columns_json`: sorted keys, no spaces, times in UTC with microseconds) rendered by PostgreSQL
# beside the signed text as stored, so nothing is decoded or re-encoded here; this process only
# checks the links and hashes. A rendering that differed from ours could only fail a row (the
# full walk then decides), never pass an edited one. The JSONB is fetched only for older rows.
TIME = """'"' || to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || '"'"""
LEGACY = ("event_id", "type", "plan_id", "actor", "occurred_at", "recorded_at", "signer", "signer_key", "signature")
FAST_ROWS = f"""
SELECT seq, prev_hash, hash, chain_version, canonical,
       '{{"actor":' || to_json(actor)::text || ',"event_id":' || to_json(event_id)::text
       || ',"occurred_at":' || {TIME.format("occurred_at")} || ',"plan_id":' || to_json(plan_id)::text
       || ',"recorded_at":' || {TIME.format("recorded_at")} || ',"seq":' || seq::text
       || ',"signature":' || coalesce(to_json(signature)::text, 'null')
       || ',"signer":' || coalesce(to_json(signer)::text, 'null')
       || ',"signer_key":' || coalesce(to_json(signer_key)::text, 'null')
       || ',"type":' || to_json(type)::text || '}}' AS columns,
       CASE WHEN canonical IS NULL THEN payload::text END AS legacy,
       {", ".join(f"CASE WHEN canonical IS NULL THEN {c} END AS {c}" for c in LEGACY)}
FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3
"""
# (the columns a row from before the stored text is checked with are sent for those rows only:
# decoding nine more values a row, two of them times, was half of what the walk cost)
# The hashed text must say what the JSONB (which the API and the projections read) and the
# columns say: checked by PostgreSQL over the whole range in one statement, on a connection of
# its own while this one walks the chain.
DISAGREEING = """
SELECT min(seq) FROM audit_events
WHERE seq > $1 AND seq <= $2 AND canonical IS NOT NULL AND (
      canonical::jsonb IS DISTINCT FROM payload
   OR payload->>'id' IS DISTINCT FROM event_id OR payload->>'type' IS DISTINCT FROM type
   OR payload->>'plan_id' IS DISTINCT FROM plan_id OR payload->>'actor' IS DISTINCT FROM actor
   OR (payload->>'occurred_at')::timestamptz IS DISTINCT FROM occurred_at)
"""
PAGE = 10_000
# The walk is split into this many ranges, each on a connection of its own, so the server renders
# their rows on as many backends at once; this process only hashes (a few microseconds a row).
PARTS = 2


@dataclass(frozen=True)
class Walked:
    """One range's walk: rows checked, the last hash, chain-1 rows, and whether it held chain-2 rows."""

    count: int
    head: str
    legacy: int
    seen_v2: bool


async def fast(conn: AsyncConnection, since: int, until: int | None, start: str) -> Verdict | None:
    """The chain's verdict from the stored signed text, or None when the full walk must decide
    (any row that does not verify, so that its problem is described the one way)."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    last = until if until is not None else (await raw.fetchval("SELECT max(seq) FROM audit_events") or 0)
    bounds = ranges(since, last, PARTS if last - since >= PARTS * PAGE else 1)
    # each range starts from the hash of the last row before it (the one before `since` for the first)
    starts = [start]
    for lo, _ in bounds[1:]:
        before = await raw.fetchval(
            "SELECT hash FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1", since, lo
        )
        starts.append(before if before is not None else start)
    async with contextlib.AsyncExitStack() as stack:
        others = [await _driver(stack, conn) for _ in bounds]
        agree = asyncio.create_task(_agree(others[0], since, last))
        walks = [asyncio.create_task(_walk(raw, *bounds[0], starts[0]))]
        walks += [
            asyncio.create_task(_walk(other, lo, hi, first))
            for other, (lo, hi), first in zip(others[1:], bounds[1:], starts[1:], strict=True)
        ]
        try:
            walked = await asyncio.gather(*walks)
        finally:
            for task in walks:
                task.cancel()
            await asyncio.gather(*walks, return_exceptions=True)
            agreed = await agree
    if not agreed or any(w is None for w in walked):
        return None
    parts = [w for w in walked if w is not None]
    v2_before = False
    for i, part in enumerate(parts):
        # each range ended on the hash the next one started from, and no chain-1 row comes after
        # a chain-2 row in an earlier range (within one, the walk itself says so)
        if i and parts[i - 1].head != starts[i]:
            return None
        if part.legacy and v2_before:
            return None
        v2_before = v2_before or part.seen_v2
    return Verdict(True, sum(p.count for p in parts), parts[-1].head, legacy=sum(p.legacy for p in parts))


def ranges(since: int, last: int, parts: int) -> list[tuple[int, int]]:
    """(lo, hi] seq ranges that cover (since, last] in `parts` near-equal pieces."""
    step = max(1, -(-(last - since) // parts))
    return [(lo, min(lo + step, last)) for lo in range(since, last, step)] or [(since, last)]


async def _driver(stack: contextlib.AsyncExitStack, conn: AsyncConnection) -> Any:
    other = await stack.enter_async_context(conn.engine.connect())
    driver = (await other.get_raw_connection()).driver_connection
    assert driver is not None
    return driver


async def _agree(raw: Any, since: int, last: int) -> bool:
    try:
        return await raw.fetchval(DISAGREEING, since, last) is None
    except Exception:  # a JSONB edited into something that is not an event at all
        return False


async def _walk(raw: Any, since: int, last: int, start: str) -> Walked | None:
    pages = [asyncio.create_task(raw.fetch(FAST_ROWS, since, last, PAGE))]
    try:
        return await _hash_pages(pages, raw, last, start)
    finally:
        if not pages[-1].done():  # a row failed while the next page was on its way
            pages[-1].cancel()
            with contextlib.suppress(BaseException):
                await pages[-1]


async def _hash_pages(pages: list[asyncio.Task[Any]], raw: Any, last: int, start: str) -> Walked | None:
    expected, count, legacy, seen_v2 = start, 0, 0, False
    sha256 = hashlib.sha256
    while True:
        rows = await pages[-1]
        if len(rows) == PAGE:  # the next page is computed by the server while this one is hashed
            pages.append(asyncio.create_task(raw.fetch(FAST_ROWS, rows[-1]["seq"], last, PAGE)))
            await asyncio.sleep(0)
        for r in rows:
            if r["prev_hash"] != expected:
                return None
            signed = r["canonical"]
            if signed is None:  # rows from before the stored text: their own rule
                if check_row(_legacy(r), expected, None, seen_v2) is not None:
                    return None
            elif (
                r["chain_version"] != CHAIN_VERSION
                or sha256(f"{expected}|2|{r['columns']}|{signed}".encode()).hexdigest() != r["hash"]
            ):  # (only chain 2 stores the text)
                return None
            seen_v2 = seen_v2 or r["chain_version"] != 1
            legacy += r["chain_version"] == 1
            expected = r["hash"]
            count += 1
        if len(rows) < PAGE:
            return Walked(count, expected, legacy, seen_v2)


def _legacy(r: Any) -> ChainRow:
    """A row from before the stored text, as the full walk reads it."""
    return ChainRow(
        r["seq"],
        r["event_id"],
        json.loads(r["legacy"]),
        r["prev_hash"],
        r["hash"],
        r["type"],
        r["plan_id"],
        r["actor"],
        r["occurred_at"],
        r["recorded_at"],
        r["signer"],
        r["signer_key"],
        r["signature"],
        r["chain_version"],
    )


async def _explain(conn: AsyncConnection, verdict: Verdict) -> Verdict:
    """Say which tampering a broken link looks like: a missing row, or rows out of order."""
    if "prev_hash" not in verdict.problem or verdict.broken_seq is None:
        return verdict
    row = (await conn.execute(select(audit_events.c.prev_hash).where(audit_events.c.seq == verdict.broken_seq))).first()
    if row is None:
        return verdict
    linked = await conn.scalar(select(audit_events.c.seq).where(audit_events.c.hash == row.prev_hash))
    if linked is None:
        return verdict.but("the row this one links to is gone (a row before it was deleted)")
    if linked > verdict.broken_seq:
        return verdict.but(f"this row links to seq {linked}, which comes after it (rows were reordered)")
    return verdict.but(f"this row links to seq {linked}, not to the row before it (a row was inserted or reordered)")


async def _against_anchors(conn: AsyncConnection, verdict: Verdict, anchors: list[Anchor]) -> Verdict:
    """Anchors kept outside the table catch what a consistent chain hides: a cut tail, a rewrite."""
    last = await conn.scalar(select(func.max(audit_events.c.seq))) or 0
    for anchor in sorted(anchors, key=lambda a: a.seq):
        if anchor.seq == 0:
            continue
        if anchor.seq > last:
            return verdict.but(
                f"the log ends at seq {last} but was anchored at seq {anchor.seq} on {anchor.at} "
                "(the tail was truncated)",
                last + 1,
            )
        stored = await conn.scalar(select(audit_events.c.hash).where(audit_events.c.seq == anchor.seq))
        if stored != anchor.hash:
            return verdict.but(
                f"row {anchor.seq} no longer has the hash anchored on {anchor.at} (the log was rewritten)",
                anchor.seq,
            )
    return verdict
