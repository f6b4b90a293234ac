"""The audit log for readers: paginated queries, a plan's timeline, live events over SSE, AsyncAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response

from services.gateway.api import GatewayDep, Viewer, existing
from services.gateway.auth import Principal, Role, presented_key, require
from services.gateway.feed import Entry
from services.gateway.schemas import AuditEvent, AuditPage, HistoryEvent
from services.gateway.sse import EventStream
from shared import auditlog
from shared.text import UtcTime

router = APIRouter()


SSE_KEEPALIVE_SECONDS = 15.0
SseViewer = Annotated[Principal, Depends(require(Role.VIEWER, allow_query_key=True))]


def _row(r: Any) -> AuditEvent:
    return AuditEvent(
        seq=r.seq,
        event_id=r.event_id,
        type=r.type,
        plan_id=r.plan_id,
        actor=r.actor,
        occurred_at=r.occurred_at.isoformat(),
        recorded_at=r.recorded_at.isoformat(),
        prev_hash=r.prev_hash,
        hash=r.hash,
        data=r.payload.get("data", {}),
    )


def _pattern(value: str | None) -> str | None:
    if value is not None and not auditlog.valid_pattern(value):
        raise HTTPException(422, auditlog.TYPE_PATTERN_HELP)
    return value


@router.get("/api/audit", tags=["audit"])
async def audit(
    gw: GatewayDep,
    _who: Viewer,
    plan_id: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    since: UtcTime | None = None,
    until: UtcTime | None = None,
    cursor: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Recorded events in log order; pass `next_cursor` back as `cursor` for the next page."""
    query = auditlog.events(
        after_seq=cursor, plan_id=plan_id, type_pattern=_pattern(type), since=since, until=until, limit=limit + 1
    )
    async with gw.read.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return AuditPage(events=[_row(r) for r in page], next_cursor=page[-1].seq if more and page else None)


@router.get("/api/deployments/{plan_id}/history", tags=["audit"])
async def history(plan_id: str, gw: GatewayDep, _who: Viewer) -> list[HistoryEvent]:
    """The plan's timeline: every event, who caused it and when."""
    await existing(gw, plan_id)
    query = auditlog.events(plan_id=plan_id)
    async with gw.read.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [HistoryEvent.model_validate(_row(r).model_dump(exclude={"prev_hash", "recorded_at"})) for r in rows]


@router.get("/api/events", tags=["audit"], response_class=EventStream)
async def events(
    request: Request,
    gw: GatewayDep,
    _who: SseViewer,
    plan_id: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[str | None, Query(max_length=100, description="an event type, or a prefix: `deployment.*`")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> EventStream:
    """Server-Sent Events of recorded events (id = audit seq). Reconnect with `Last-Event-ID`
    (browsers do it by themselves) to resume exactly after the last event received. A client
    that falls far behind (it does not read) has its stream ended rather than slowing the
    others; reconnecting resumes it where it was."""
    start = after if after is not None else _seq(last_event_id)
    if start is None:
        start = gw.feed.head  # from now: what the feed has yet to read still comes
    return EventStream(
        _stream(request, gw, start, plan_id, type_pattern=_pattern(type)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/events/{plan_id}", tags=["audit"], response_class=EventStream)
async def plan_events(
    plan_id: Annotated[str, Path(max_length=100, description="a plan id")],
    request: Request,
    gw: GatewayDep,
    _who: SseViewer,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> EventStream:
    """One plan's events as Server-Sent Events (the seed client's path): everything recorded for
    it so far, then what happens next, so a client that connects after sending its command misses
    nothing. Unnamed messages (`onmessage` gets them; `data.type` says which event), resumed with
    `Last-Event-ID` as on /api/events. A plan just accepted is waited for
    (the log records it milliseconds after the answer); an unknown one is a 404."""
    deadline = asyncio.get_running_loop().time() + min(gw.settings.command_wait_seconds, 10.0)
    while await gw.read.deployment(plan_id) is None:
        if asyncio.get_running_loop().time() > deadline:
            await existing(gw, plan_id)  # the 404, with its message
        await asyncio.sleep(0.05)
    start = after if after is not None else _seq(last_event_id)
    return EventStream(
        _stream(request, gw, start or 0, plan_id, named=False),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _seq(value: str | None) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise HTTPException(422, "Last-Event-ID must be the seq of the last event received (a whole number)")
    return int(value)


async def _stream(
    request: Request, gw: Any, cursor: int, plan_id: str | None, named: bool = True, type_pattern: str | None = None
) -> AsyncIterator[str]:
    """The log after `cursor`: from the database up to where the process's feed took over, then
    from the feed (services/gateway/feed.py), which wakes this stream when it has events for it
    and once a second; each wake sends what arrived as one write. A client that leaves ends the
    stream (the response listens for the disconnect)."""
    yield "retry: 2000\n\n"
    feed, keys = gw.feed, request.app.state.keys
    sub = feed.subscribe(plan_id, type_pattern)  # first: nothing after its head can be missed
    secret = presented_key(request, allow_query=True) or ""
    generation = keys.fresh()
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    try:
        while cursor < sub.after:  # catching up: the log up to the feed's head at subscription
            query = auditlog.events(
                after_seq=cursor, plan_id=plan_id, type_pattern=type_pattern, through_seq=sub.after, limit=500
            )
            async with gw.read.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            if not rows:
                break
            cursor = rows[-1].seq
            yield "".join(Entry.of(r).message(named) for r in rows)
        while True:
            chunk = []
            while not sub.queue.empty():
                entry = sub.queue.get_nowait()
                if entry.seq > cursor:
                    cursor = entry.seq
                    chunk.append(entry.message(named))
            if chunk:
                quiet_since = loop.time()
                yield "".join(chunk)
            elif sub.dropped:  # it fell behind: the client resumes from the database (Last-Event-ID)
                return
            if keys.fresh() != generation:
                # a key revoked while its stream is open loses the stream within seconds
                generation = keys.generation
                if keys.authenticate(secret) is None:
                    yield 'event: revoked\ndata: {"detail": "the API key was revoked"}\n\n'
                    return
            if loop.time() - quiet_since >= SSE_KEEPALIVE_SECONDS:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
            sub.woken.clear()
            if sub.queue.empty() and not sub.dropped:
                await sub.woken.wait()
    finally:
        feed.unsubscribe(sub)


@router.get("/asyncapi", tags=["ops"])
async def asyncapi(gw: GatewayDep) -> Response:
    """The AsyncAPI 3 document of every subject and payload (public: it is schema, not data)."""
    if gw.asyncapi is None:
        raise HTTPException(404, "this gateway was started without the AsyncAPI document")
    return Response(await asyncio.to_thread(gw.asyncapi), media_type="application/json")
