"""One feed of the audit log per gateway process, fanned out in memory to every live-event client.

Each `/api/events` stream used to poll PostgreSQL by itself every 250 ms: 300 open dashboards were
300 pollers, and the decisive answer slowed 3.8x. Now one task reads what the auditor recorded
(woken by the auditor's NOTIFY at commit, at most every `min_interval` seconds, and by a poll every
`poll_seconds` in case a notification is missed), renders each event once and hands it to every
subscriber whose filters match, through a bounded queue each.

A subscriber that cannot keep up (its queue full: its client is not reading) is dropped, never
waited for: its stream ends after what it already holds, and the browser reconnects with
`Last-Event-ID`, which resumes it from the database exactly after the last event it received.
No gap, no repeat: a new subscriber gets everything after the feed's head at the moment it
subscribed through its queue, and reads the log up to that head from the database itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import auditlog
from shared.db import audit_events

log = logging.getLogger(__name__)

PAGE = 1000
WAKE_SLICE = 25
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class Entry:
    """A recorded event, rendered once for every client."""

    seq: int
    type: str
    plan_id: str
    data: str  # the SSE data line: {"seq": ..., **event}
    named: str  # the whole SSE message, with `event: <type>` (/api/events)
    unnamed: str  # and without (/api/events/{plan_id}: the seed client's onmessage)

    @classmethod
    def of(cls, row: Any) -> Entry:
        data = json.dumps({"seq": row.seq, **row.payload})
        named = f"id: {row.seq}\nevent: {row.type}\ndata: {data}\n\n"
        return cls(row.seq, row.type, row.plan_id, data, named, f"id: {row.seq}\ndata: {data}\n\n")

    def message(self, named: bool) -> str:
        return self.named if named else self.unnamed


def type_matcher(pattern: str | None) -> Callable[[str], bool]:
    """The audit API's type filter (shared/auditlog.py `type_filter`) applied in memory."""
    if not pattern or pattern in ("*", ">"):
        return lambda _type: True
    if pattern.endswith((".*", ".>")):
        prefix = pattern[:-1]
        return lambda event_type: event_type.startswith(prefix)
    return lambda event_type: event_type == pattern


@dataclass(eq=False)
class Subscription:
    after: int  # the feed's head when it subscribed: later events come through `queue`
    plan_id: str | None
    wants_type: Callable[[str], bool]
    queue: asyncio.Queue[Entry]
    dropped: bool = False  # it fell `size` events behind: its stream ends, its client resumes
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, entry: Entry) -> bool:
        return (self.plan_id is None or entry.plan_id == self.plan_id) and self.wants_type(entry.type)


class Feed:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        buffer: int = 2000,
        poll_seconds: float = 1.0,
        min_interval: float = 0.25,
        metrics: Any = None,
    ) -> None:
        self.engine, self.buffer = engine, buffer
        self.poll_seconds, self.min_interval = poll_seconds, min_interval
        self.head = 0
        self.subscribers: set[Subscription] = set()
        self.listening = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._clients = metrics.gauge("sse_clients", "live-event streams open") if metrics else None
        self._dropped = (
            metrics.counter("sse_dropped", "live-event streams ended for falling behind (they resume)")
            if metrics
            else None
        )

    async def start(self) -> None:
        async with self.engine.connect() as conn:
            self.head = int(await conn.scalar(select(func.max(audit_events.c.seq))) or 0)
        self._tasks = [
            asyncio.create_task(self._run()),
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._tick()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a read cut off mid-query must not hold up the gateway's stop
            await asyncio.wait(self._tasks, timeout=5)

    def subscribe(self, plan_id: str | None = None, type_pattern: str | None = None) -> Subscription:
        sub = Subscription(self.head, plan_id, type_matcher(type_pattern), asyncio.Queue())
        self.subscribers.add(sub)
        self._count()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        self._count()

    def publish(self, entries: list[Entry]) -> list[Subscription]:
        """Hand `entries` (in seq order, after the head) to every subscriber that wants them;
        returns the subscribers to wake."""
        for entry in entries:
            self.head = entry.seq
        woken = []
        for sub in list(self.subscribers):
            wanted = [entry for entry in entries if sub.wants(entry)]
            if not wanted:
                continue
            woken.append(sub)
            if sub.queue.qsize() >= self.buffer:
                # `buffer` events it has not taken: it is woken to send what it holds, then ends
                sub.dropped = True
                self.subscribers.discard(sub)
                if self._dropped is not None:
                    self._dropped.inc()
                continue
            for entry in wanted:  # (a queue holds at most `buffer` + one read's events)
                sub.queue.put_nowait(entry)
        self._count()
        return woken

    async def wake(self, subscribers: list[Subscription]) -> None:
        """Wake subscribers a slice at a time, letting the loop serve requests in between: a
        thousand streams woken at once would hold every other request for their whole write."""
        for i, sub in enumerate(subscribers):
            sub.woken.set()
            if i % WAKE_SLICE == WAKE_SLICE - 1:
                await asyncio.sleep(0)

    def _count(self) -> None:
        if self._clients is not None:
            self._clients.set(len(self.subscribers))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            started = loop.time()
            try:
                while True:
                    if not self.subscribers and await self._skip_to_end():
                        break
                    async with self.engine.connect() as conn:
                        rows = (await conn.execute(auditlog.events(after_seq=self.head, limit=PAGE))).all()
                    await self.wake(self.publish([Entry.of(r) for r in rows]))
                    if len(rows) < PAGE:
                        break
            except Exception as exc:  # the database away: the head stays, nothing is skipped
                log.warning("live events: reading the log failed (%r); retrying", exc)
            # coalesce: one read (and one write per client) per interval, however often woken
            await asyncio.sleep(max(0.0, self.min_interval - (loop.time() - started)))

    async def _skip_to_end(self) -> bool:
        """With nobody subscribed, nothing is read or rendered: the head moves to where the log
        ends (a client who subscribes later reads the log up to the head itself). False when a
        client subscribed while the end was being looked up: its stream starts at the head it
        saw, so the feed reads on from there as usual. (Not the NOTIFY's payload: anyone who can
        connect may NOTIFY, and a head moved past what was recorded would skip events.)"""
        async with self.engine.connect() as conn:
            end = int(await conn.scalar(select(func.max(audit_events.c.seq))) or 0)
        if self.subscribers:
            return False
        self.head = max(self.head, end)
        return True

    async def _tick(self) -> None:
        """Wake every subscriber once a second even with nothing new (keep-alives, key checks):
        one timer for all of them, not one per stream."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self.wake(list(self.subscribers))

    async def _listen(self) -> None:
        """Wake the reader when the auditor commits (its NOTIFY); without it, the poll does. A
        connection of its own (not the pool's: a listening connection is never handed back)."""

        def woken(*_args: Any) -> None:
            self._wake.set()

        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            raw = None
            try:
                raw = await asyncpg.connect(dsn, timeout=10)
                await raw.add_listener(auditlog.NOTIFY_CHANNEL, woken)
                self.listening = True
                while not raw.is_closed():
                    await asyncio.sleep(2)
                    await raw.execute("SELECT 1", timeout=10)  # a dead connection is noticed here
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("live events: not listening for the auditor (%r); polling", exc)
            finally:
                self.listening = False
                if raw is not None:
                    raw.terminate()  # immediate, never waits (cancellation included)
            await asyncio.sleep(1)
