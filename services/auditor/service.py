"""The auditor as a class with ports: the log (append a batch), a way to record a rejection, and
whom it trusts. `record` takes a batch of bus messages in stream order and returns once every one
of them is in the log or recorded as refused; the ordered consumer acknowledges them after that.

A batch that cannot be written (PostgreSQL away) is retried here, in place, with in-progress
heartbeats so the broker does not redeliver it, and nothing after it is fetched until it commits.
Run one auditor (a second one is a warm standby, not more throughput: appends are serial).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from services.auditor.consumer import intake, refused_as_data
from services.auditor.store import Signed
from shared.events import REPLAY_PREFIX
from shared.identity import TrustedSigners
from shared.text import safe_text

log = logging.getLogger(__name__)
SERVICE = "auditor"
RETRY_SECONDS = 1.0


class Log(Protocol):
    async def append_many(self, items: list[Signed], project: bool = True) -> None: ...


class Message(Protocol):
    """A message as the ordered consumer fetches it (nats-py's JetStream Msg)."""

    subject: str
    data: bytes
    headers: dict[str, str] | None

    async def in_progress(self) -> None: ...


# (body, subject, the message, why) -> publishes `message.rejected`
Reject = Callable[[bytes, str, Any, str, Any], Awaitable[None]]


class Auditor:
    def __init__(
        self,
        log: Log,
        reject: Reject,
        trusted: TrustedSigners,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.log, self.reject_fn, self.trusted, self.sleep = log, reject, trusted, sleep
        self.stopping = False

    async def record(self, msgs: list[Any]) -> list[str | None]:
        """Append the batch's events; returns the plan each message belongs to (None for what was
        not an event), which names its span."""
        items: list[tuple[Any, Signed]] = []
        plans: list[str | None] = []
        for msg in msgs:
            plans.append(None)
            if msg.subject.startswith(REPLAY_PREFIX):
                continue  # a re-publication of what the log already holds (`agentops audit replay --publish`)
            item, problem = intake(self.trusted, msg.data, msg.subject, msg.headers)
            if item is None:
                await self._reject(msg, problem or "not an event")
            else:
                items.append((msg, item))
                plans[-1] = item.event.plan_id
        await self._write(items)
        return plans

    async def _reject(self, msg: Any, problem: str) -> None:
        """Publish the rejection, retried in place (the batch kept ours meanwhile): restarting the
        loop over a slow acknowledgement would wait out ack_wait before anything else is logged."""
        attempt = 0
        while True:
            try:
                await self.reject_fn(msg.data, msg.subject, msg, problem, msg.headers)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    raise
                attempt += 1
                log.warning("auditor: recording a rejection failed (attempt %d), retrying: %r", attempt, exc)
                await _quietly(msg.in_progress())
                await self.sleep(min(RETRY_SECONDS * attempt, 5.0))

    async def _refuse(self, item: tuple[Any, Signed], exc: BaseException) -> None:
        msg, signed = item
        why = f"the log cannot store this event: {type(exc).__name__}: {safe_text(exc, 300)}"
        if signed.event.type != "message.rejected":
            await self._reject(msg, why)
            return
        # Rejecting a rejection would make another one, and so on: keep it in the log without
        # its projection, or if even that fails, say so here and go on.
        log.error("auditor: %s (a message.rejected record; kept without projection)", why)
        try:
            await self.log.append_many([signed], project=False)
        except Exception:
            log.exception("auditor: a message.rejected record could not be stored at all; skipped")

    async def _write(self, items: list[tuple[Any, Signed]]) -> None:
        """Append the batch; retried in place while the database is away. An event the database
        refuses as data (a value it cannot store) is found by writing one at a time, recorded as
        `message.rejected`, and skipped: one bad event never stops the log."""
        attempt = 0
        while items:
            try:
                await self.log.append_many([item for _, item in items])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if refused_as_data(exc) and len(items) > 1:
                    for one in items:
                        await self._write([one])
                    return
                if refused_as_data(exc):
                    await self._refuse(items[0], exc)
                    return
                if self.stopping:
                    raise
                attempt += 1
                log.warning("auditor: writing %d events failed (attempt %d), retrying: %r", len(items), attempt, exc)
                for msg, _ in items:  # keep the batch ours while we wait
                    await _quietly(msg.in_progress())
                await self.sleep(min(RETRY_SECONDS * attempt, 5.0))


async def _quietly(call: Any) -> None:
    with contextlib.suppress(Exception):  # the broker away too: a redelivery is tolerated by the append
        await call
