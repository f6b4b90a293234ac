"""Appending to the log: one transaction holds the chain link and the projection updates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.auditor.chain import CHAIN_VERSION, GENESIS_HASH, ChainRow, row_hash
from shared.auditlog import NOTIFY_CHANNEL
from shared.db import approvals, audit_events, deployments
from shared.events import Event
from shared.fold import fold_approval, fold_plan, touches_approvals
from shared.identity import SIGNATURE_HEADER, SIGNER_HEADER, Signer
from shared.readmodels import ApprovalRow, PlanRow

# One writer at a time extends the chain, whichever auditor replica it is.
CHAIN_LOCK_KEY = 0x4147454E544F5053  # "AGENTOPS"


@dataclass(frozen=True)
class Signed:
    """An event as it came off the bus: the parsed event, the exact JSON its producer signed, and
    the signature. The log stores the signed JSON (so the signature verifies from the row alone)."""

    event: Event
    payload: dict[str, Any]
    canonical: str
    signer: str | None = None
    signer_key: str | None = None
    signature: str | None = None

    @classmethod
    def of(cls, event: Event, signer: Signer | None = None) -> Signed:
        """A locally built event, signed by `signer` (rebuilds, tests, benches)."""
        canonical = event.canonical_json()
        headers = signer.sign(canonical.encode()) if signer else {}
        return cls(
            event,
            json.loads(canonical),
            canonical,
            signer.service if signer else None,
            headers.get(SIGNER_HEADER),
            headers.get(SIGNATURE_HEADER),
        )


async def append(engine: AsyncEngine, item: Signed) -> int | None:
    """Record one event; returns its seq, or None when it was already recorded (a redelivery)."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
        seen = await conn.scalar(select(audit_events.c.seq).where(audit_events.c.event_id == str(item.event.id)))
        if seen is not None:
            return None
        last_seq, prev_hash = await _head(conn)
        row = _row(item, last_seq + 1, prev_hash, datetime.now(UTC))
        await conn.execute(insert(audit_events).values(**row))
        await _notify(conn, row["seq"])
        await project(conn, item.event, row["seq"])
        return int(row["seq"])


def _row(item: Signed, seq: int, prev_hash: str, now: datetime) -> dict[str, Any]:
    event = item.event
    chain = ChainRow(
        seq=seq,
        event_id=str(event.id),
        payload=item.payload,
        prev_hash=prev_hash,
        hash="",
        type=event.type,
        plan_id=event.plan_id,
        actor=event.actor,
        occurred_at=event.occurred_at,
        recorded_at=now,
        signer=item.signer,
        signer_key=item.signer_key,
        signature=item.signature,
        chain_version=CHAIN_VERSION,
    )
    return {
        "seq": seq,
        "event_id": chain.event_id,
        "type": chain.type,
        "plan_id": chain.plan_id,
        "actor": chain.actor,
        "occurred_at": event.occurred_at,
        "recorded_at": now,
        "payload": item.payload,
        "prev_hash": prev_hash,
        "hash": row_hash(chain, item.canonical),
        "signer": item.signer,
        "signer_key": item.signer_key,
        "signature": item.signature,
        "chain_version": CHAIN_VERSION,
        "canonical": item.canonical,
    }


async def append_many(engine: AsyncEngine, items: list[Signed], project: bool = True) -> int:
    """Record a batch in one transaction (one lock, one head read); returns how many were new.
    `project=False` appends to the log alone (a record the projections could not take)."""
    if not items:
        return 0
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
        # Every lookup here is by a unique key; with hundreds of keys in one IN list the planner
        # would otherwise switch to scanning the whole (ever-growing) table once it has statistics.
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        ids = [str(i.event.id) for i in items]
        seen = set(
            (await conn.execute(select(audit_events.c.event_id).where(audit_events.c.event_id.in_(ids)))).scalars()
        )
        last_seq, prev_hash = await _head(conn)
        rows, fresh = [], []
        now = datetime.now(UTC)
        for item in items:
            if str(item.event.id) in seen:
                continue
            seen.add(str(item.event.id))
            last_seq += 1
            row = _row(item, last_seq, prev_hash, now)
            rows.append(row)
            fresh.append(item.event)
            prev_hash = row["hash"]
        if not rows:
            return 0
        seqs = list((await conn.execute(insert(audit_events).returning(audit_events.c.seq), rows)).scalars())
        await _notify(conn, last_seq)
        if not project:
            return len(rows)
        pairs = list(zip(fresh, sorted(seqs), strict=True))
        await _project_many(conn, PLANS, pairs)
        await _project_many(conn, APPROVALS, [(e, q) for e, q in pairs if touches_approvals(e)])
        return len(rows)


async def _notify(conn: AsyncConnection, seq: int) -> None:
    """Delivered at commit (never for a batch rolled back): each gateway's live-event feed reads
    the log now rather than at its next poll."""
    await conn.execute(text("SELECT pg_notify(:channel, :seq)"), {"channel": NOTIFY_CHANNEL, "seq": str(seq)})


async def _head(conn: AsyncConnection) -> tuple[int, str]:
    """The chain's last (seq, hash). Seqs are assigned here, under the chain lock, not by the
    column's sequence: a transaction that dies (a crash, a lost connection) would otherwise burn a
    number, and a gap in the log reads like a deleted row."""
    head = (
        await conn.execute(select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1))
    ).first()
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


@dataclass(frozen=True)
class Projection:
    """A table the fold keeps: its rows' model and the fold that changes them."""

    table: Any
    model: type[PlanRow] | type[ApprovalRow]
    fold: Callable[[Any, Event, int], PlanRow | ApprovalRow | None]


PLANS = Projection(deployments, PlanRow, fold_plan)
APPROVALS = Projection(approvals, ApprovalRow, fold_approval)


async def _project_many(conn: AsyncConnection, projection: Projection, pairs: list[tuple[Event, int]]) -> None:
    """Fold a batch: one read and one write per table and plan for the whole batch."""
    if not pairs:
        return
    table = projection.table
    plan_ids = list({e.plan_id for e, _ in pairs})
    found = (await conn.execute(select(table).where(table.c.plan_id.in_(plan_ids)))).mappings()
    current: dict[str, Any] = {r["plan_id"]: projection.model.model_validate(dict(r)) for r in found}
    existing, touched = set(current), set()
    for event, seq in pairs:
        row = projection.fold(current.get(event.plan_id), event, seq)
        if row is not None:
            current[event.plan_id] = row
            touched.add(event.plan_id)
    fresh = [current[p].columns() for p in touched if p not in existing]
    if fresh:
        await conn.execute(insert(table), fresh)
    for plan_id in touched & existing:
        await conn.execute(update(table).where(table.c.plan_id == plan_id).values(**current[plan_id].columns()))


async def project(conn: AsyncConnection, event: Event, seq: int) -> None:
    """Fold one event into the tables (rebuilds)."""
    await _project_many(conn, PLANS, [(event, seq)])
    if touches_approvals(event):
        await _project_many(conn, APPROVALS, [(event, seq)])


async def chain_rows(
    conn: AsyncConnection, since_seq: int = 0, until_seq: int | None = None, batch: int = 5000
) -> AsyncIterator[ChainRow]:
    """Rows in seq order, fetched in pages so a long log does not sit in memory."""
    cursor = since_seq
    while True:
        query = select(audit_events).where(audit_events.c.seq > cursor).order_by(audit_events.c.seq).limit(batch)
        if until_seq is not None:
            query = query.where(audit_events.c.seq <= until_seq)
        rows = (await conn.execute(query)).all()
        for r in rows:
            yield ChainRow(
                r.seq,
                r.event_id,
                r.payload,
                r.prev_hash,
                r.hash,
                r.type,
                r.plan_id,
                r.actor,
                r.occurred_at,
                r.recorded_at,
                r.signer,
                r.signer_key,
                r.signature,
                r.chain_version,
                r.canonical,
            )
        if len(rows) < batch:
            return
        cursor = rows[-1].seq


class PostgresLog:
    """The auditor's port to the log (services/auditor/service.py `Log`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append_many(self, items: list[Signed], project: bool = True) -> None:
        await append_many(self.engine, items, project)
