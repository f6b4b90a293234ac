"""The audit log for readers: paginated queries, a plan's timeline, live events over SSE, AsyncAPI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from services.gateway.api import GatewayDep, Viewer, existing
from services.gateway.auth import Principal, Role, presented_key, require
from services.gateway.schemas import AuditEvent, AuditPage, HistoryEvent
from shared import auditlog
from shared.text import UtcTime

router = APIRouter()


class EventStream(StreamingResponse):
    """Server-Sent Events (documented as text/event-stream, not JSON)."""

    media_type = "text/event-stream"


SSE_POLL_SECONDS = 0.25
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


KEY_RECHECK_SECONDS = 1.0


@router.get("/api/events", tags=["audit"], response_class=EventStream)
async def events(
    request: Request,
    gw: GatewayDep,
    _who: SseViewer,
    plan_id: Annotated[str | None, Query(max_length=100)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> StreamingResponse:
    """Server-Sent Events of recorded events (id = audit seq). Reconnect with `Last-Event-ID`
    (browsers do it by themselves) to resume exactly after the last event received."""
    start = after if after is not None else _seq(last_event_id)
    if start is None:
        async with gw.read.engine.connect() as conn:
            start = int(await conn.scalar(auditlog.head()) or 0)
    return StreamingResponse(
        _stream(request, gw, start, plan_id),
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
) -> StreamingResponse:
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
    return StreamingResponse(
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
    request: Request, gw: Any, cursor: int, plan_id: str | None, named: bool = True
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    idle = 0.0
    secret = presented_key(request, allow_query=True) or ""
    checked = asyncio.get_running_loop().time()
    while not await request.is_disconnected():
        if asyncio.get_running_loop().time() - checked >= KEY_RECHECK_SECONDS:
            # a key revoked while its stream is open loses the stream within seconds
            checked = asyncio.get_running_loop().time()
            if request.app.state.keys.authenticate(secret) is None:
                yield 'event: revoked\ndata: {"detail": "the API key was revoked"}\n\n'
                return
        query = auditlog.events(after_seq=cursor, plan_id=plan_id, limit=500)
        async with gw.read.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for r in rows:
            cursor = r.seq
            name = f"event: {r.type}\n" if named else ""
            yield f"id: {r.seq}\n{name}data: {json.dumps({'seq': r.seq, **r.payload})}\n\n"
        if rows:
            idle = 0.0
            continue
        await asyncio.sleep(SSE_POLL_SECONDS)
        idle += SSE_POLL_SECONDS
        if idle >= SSE_KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"


@router.get("/asyncapi", tags=["ops"])
async def asyncapi(gw: GatewayDep) -> Response:
    """The AsyncAPI 3 document of every subject and payload (public: it is schema, not data)."""
    if gw.asyncapi is None:
        raise HTTPException(404, "this gateway was started without the AsyncAPI document")
    return Response(await asyncio.to_thread(gw.asyncapi), media_type="application/json")
