"""Anchors: the head of the chain (seq and hash) written outside the table.

A consistent rewrite of the whole table, or a cut-off tail, leaves a chain that verifies; an
anchor taken earlier does not match it. Anchors go to a JSON-lines file (AUDIT_ANCHOR_FILE) and
to a JetStream KV bucket (`audit-anchors`, history kept), on a schedule and on demand.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import nats
from nats.js.api import KeyValueConfig, StorageType
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.broker import connect
from shared.db import audit_events
from shared.settings import Settings

BUCKET = "audit-anchors"
KEY = "head"


class Anchor(BaseModel):
    seq: int
    hash: str
    at: datetime


async def head(engine: AsyncEngine) -> Anchor:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
            )
        ).first()
    return Anchor(seq=row.seq if row else 0, hash=row.hash if row else "0" * 64, at=datetime.now(UTC))


def write_file(path: Path, anchor: Anchor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(anchor.model_dump_json() + "\n")


def read_file(path: Path) -> list[Anchor]:
    if not path.exists():
        return []
    return [Anchor.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


async def write_kv(settings: Settings, identity: str, anchor: Anchor, nats_url: str | None = None) -> None:
    nc = await connect(settings, identity, nats_url)
    try:
        kv = await _bucket(nc, settings.stream_replicas)
        await kv.put(KEY, anchor.model_dump_json().encode())
    finally:
        await nc.close()


async def read_kv(settings: Settings, identity: str, nats_url: str | None = None) -> list[Anchor]:
    nc = await connect(settings, identity, nats_url)
    try:
        kv = await _bucket(nc, 1)
        with contextlib.suppress(Exception):
            found = [Anchor.model_validate_json(e.value) for e in await kv.history(KEY) if e.value]
            if found:
                return found
        # nats-py's history (a watcher) can end before its first entry arrives on a busy server:
        # the newest anchor is a direct read, which cannot miss it.
        try:
            entry = await kv.get(KEY)
        except nats.js.errors.KeyNotFoundError:  # no anchors yet
            return []
        return [Anchor.model_validate_json(entry.value)] if entry.value else []
    finally:
        await nc.close()


async def _bucket(nc: nats.NATS, replicas: int):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    try:
        return await js.key_value(BUCKET)
    except Exception:
        return await js.create_key_value(
            KeyValueConfig(bucket=BUCKET, history=64, replicas=replicas, storage=StorageType.FILE)
        )


async def anchor_now(
    engine: AsyncEngine, file: Path, settings: Settings, identity: str, nats_url: str | None = None
) -> Anchor:
    anchor = await head(engine)
    write_file(file, anchor)
    if nats_url or settings.nats_url:
        await write_kv(settings, identity, anchor, nats_url)
    return anchor


def dumps(anchor: Anchor) -> str:
    return json.dumps({"seq": anchor.seq, "hash": anchor.hash, "at": anchor.at.isoformat()})
