"""`agentops audit verify`: walk the chain from the database, and check it against the anchors."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auditor.anchor import Anchor
from services.auditor.chain import GENESIS_HASH, Verdict, verify_rows
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
            verdict = verify_rows([row async for row in chain_rows(conn, since, until)], start, trusted)
            if not verdict.ok:
                return await _explain(conn, verdict)
            if anchors:
                return await _against_anchors(conn, verdict, anchors)
            return verdict
    finally:
        await engine.dispose()


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
