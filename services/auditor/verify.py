"""`agentops audit verify`: walk the chain from the database."""

from __future__ import annotations

from sqlalchemy import select

from services.auditor.chain import GENESIS_HASH, Verdict, verify_rows
from services.auditor.store import chain_rows
from shared.db import audit_events, make_engine


async def verify(url: str, since: int = 0, until: int | None = None) -> Verdict:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            start = GENESIS_HASH
            if since > 0:
                start = (
                    await conn.scalar(select(audit_events.c.hash).where(audit_events.c.seq == since)) or GENESIS_HASH
                )
            rows = [row async for row in chain_rows(conn, since, until)]
        return verify_rows(rows, start)
    finally:
        await engine.dispose()
