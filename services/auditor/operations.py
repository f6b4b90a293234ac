"""Operator tools over the log: rebuild the projections, export, select events for replay."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auditor.chain import ChainRow, columns_json
from services.auditor.store import CHAIN_LOCK_KEY, project
from shared import auditlog
from shared.db import approvals, audit_events, deployments
from shared.events import canonical_json, parse_event

EXPORT_FIELDS = (
    "seq",
    "event_id",
    "type",
    "plan_id",
    "actor",
    "occurred_at",
    "recorded_at",
    "signer",
    "signer_key",
    "signature",
    "chain_version",
    "prev_hash",
    "hash",
)


async def rebuild(engine: AsyncEngine, batch: int = 2000) -> int:
    """Drop the projections and fold them again from the log alone, in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
        await conn.execute(approvals.delete())
        await conn.execute(deployments.delete())
        cursor, count = 0, 0
        while True:
            rows = (
                await conn.execute(
                    select(audit_events.c.seq, audit_events.c.payload)
                    .where(audit_events.c.seq > cursor)
                    .order_by(audit_events.c.seq)
                    .limit(batch)
                )
            ).all()
            for row in rows:
                await project(conn, parse_event(json.dumps(row.payload)), row.seq)
            count += len(rows)
            if len(rows) < batch:
                return count
            cursor = rows[-1].seq


async def select_events(
    engine: AsyncEngine,
    plan_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    type_pattern: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    query = auditlog.events(
        after_seq=after_seq, plan_id=plan_id, type_pattern=type_pattern, since=since, until=until, limit=limit
    )
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=2000))
        async for row in result.mappings():
            yield dict(row)


def export_line(row: dict[str, Any], fmt: str) -> str:
    """One row as an outsider verifies it: `event` is the exact text the producer signed, and
    (chain 2) `columns` the exact text the hash covers besides it."""
    record = {k: _plain(row[k]) for k in EXPORT_FIELDS} | {"event": canonical_json(row["payload"])}
    record["columns"] = columns_json(_chain_row(row)) if row["chain_version"] >= 2 else ""
    if fmt == "jsonl":
        return json.dumps(record, ensure_ascii=False)
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([record[k] for k in (*EXPORT_FIELDS, "event", "columns")])
    return out.getvalue()


def csv_header() -> str:
    return ",".join((*EXPORT_FIELDS, "event", "columns"))


def _chain_row(row: dict[str, Any]) -> ChainRow:
    return ChainRow(**{f: row[f] for f in ChainRow.__dataclass_fields__ if f in row})


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
