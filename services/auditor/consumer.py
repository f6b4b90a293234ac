"""The auditor's consumer: every event, in stream order, a batch per transaction.

A plain nats-py pull loop rather than a FastStream subscriber, because the log must follow the
stream's order exactly and FastStream's batch loop does not hold it: it drops a fetched batch
when nats-py raises asyncio.TimeoutError (it catches only nats' own TimeoutError) and, with a
short wait, leaves pull requests behind that capture later messages until they are redelivered.

Every message is checked before it is written (services/auditor/consumer.py `intake`): only an
authentic catalog event, signed by a service that may produce it, is appended; anything else,
and anything PostgreSQL refuses to store, becomes a `message.rejected` record and is skipped.

The rules: at most one batch is in flight (max_ack_pending = batch size); a batch that cannot be
written (PostgreSQL away) is retried here, in place, with in-progress heartbeats so JetStream does
not redeliver it, and nothing after it is fetched until it commits; it is acknowledged only after
the commit. A crash leaves the batch unacknowledged: the next auditor to start waits out ack_wait
so that batch is redelivered before anything newer, and the append skips events already recorded.
Run one auditor (a second one is a warm standby, not more throughput: appends are serial).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

import nats.errors
import sqlalchemy.exc
from faststream.nats import NatsBroker
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auditor.store import Signed, append_many
from shared.broker import ALL_EVENTS, Identity, decode, record_rejection
from shared.events import canonical_json
from shared.identity import SIGNATURE_HEADER, SIGNER_HEADER, TrustedSigners, header
from shared.settings import Settings
from shared.text import safe_text

log = logging.getLogger(__name__)
SERVICE = "auditor"
DURABLE = f"{SERVICE}-all"
REPLAY_PREFIX = "agentops.replay."
RETRY_SECONDS = 1.0


class OrderedAuditConsumer:
    def __init__(self, settings: Settings, broker: NatsBroker, engine: AsyncEngine, identity: Identity) -> None:
        self.settings, self.broker, self.engine, self.identity = settings, broker, engine, identity
        self.sub: JetStreamContext.PullSubscription | None = None
        self.stopping = False

    async def run(self) -> None:
        while not self.stopping:
            try:
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker away, a consumer being recreated: start over shortly
                log.exception("auditor: consuming failed; retrying in %ss", RETRY_SECONDS)
                self.sub = None
                await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        """Unsubscribe before the connection closes (else its drain waits out its timeout)."""
        self.stopping = True
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
            self.sub = None

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = self.broker.connection.jetstream()
        config = ConsumerConfig(ack_wait=self.settings.ack_wait_seconds, max_ack_pending=self.settings.audit_batch)
        sub = await js.pull_subscribe(ALL_EVENTS, durable=DURABLE, stream=self.settings.stream_name, config=config)
        info = await sub.consumer_info()
        if info.num_ack_pending:
            # A batch an auditor was writing when it died is still out. JetStream hands it out again
            # before anything newer once ack_wait has passed; fetching sooner would take newer
            # events first and record them out of order.
            log.warning(
                "auditor: %d events still out from before; waiting %ss",
                info.num_ack_pending,
                self.settings.ack_wait_seconds,
            )
            await asyncio.sleep(self.settings.ack_wait_seconds + 0.5)
        return sub

    async def _loop(self) -> None:
        while not self.stopping:
            if self.sub is None:
                self.sub = await self._subscribe()
            try:
                msgs = await self.sub.fetch(self.settings.audit_batch, timeout=2.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            linger = self.settings.audit_linger_ms / 1000
            if linger and len(msgs) < self.settings.audit_batch:
                # A moment for the rest of a burst (one command makes several events): fewer,
                # larger transactions cost far less than one per event. The decisive answer to a
                # command never waits on the auditor; only the read model lags by this much.
                await asyncio.sleep(linger)
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    msgs += await self.sub.fetch(self.settings.audit_batch - len(msgs), timeout=0.2)
            await self.record(msgs)

    async def record(self, msgs: list[Any]) -> None:
        items = []
        for msg in msgs:
            if msg.subject.startswith(REPLAY_PREFIX):
                continue  # a re-publication of what the log already holds (`agentops audit replay --publish`)
            item, problem = intake(self.identity.trusted, msg.data, msg.subject, msg.headers)
            if item is None:
                await self._reject(msg, problem or "not an event")
            else:
                items.append((msg, item))
        await self._write(items)
        for msg in msgs:
            await msg.ack()

    async def _reject(self, msg: Any, problem: str) -> None:
        """Publish the rejection, retried in place (the batch kept ours meanwhile): restarting the
        loop over a slow acknowledgement would wait out ack_wait before anything else is logged."""
        stream = self.settings.stream_name
        attempt = 0
        while True:
            try:
                await record_rejection(
                    self.broker, self.identity, stream, msg.data, msg.subject, msg, problem, msg.headers
                )
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    raise
                attempt += 1
                log.warning("auditor: recording a rejection failed (attempt %d), retrying: %r", attempt, exc)
                await _quietly(msg.in_progress())
                await asyncio.sleep(min(RETRY_SECONDS * attempt, 5.0))

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
            await append_many(self.engine, [signed], project=False)
        except Exception:
            log.exception("auditor: a message.rejected record could not be stored at all; skipped")

    async def _write(self, items: list[tuple[Any, Signed]]) -> None:
        """Append the batch; retried in place while the database is away. An event the database
        refuses as data (a value it cannot store) is found by writing one at a time, recorded as
        `message.rejected`, and skipped: one bad event never stops the log."""
        attempt = 0
        while items:
            try:
                await append_many(self.engine, [item for _, item in items])
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
                await asyncio.sleep(min(RETRY_SECONDS * attempt, 5.0))


def intake(trusted: TrustedSigners, body: bytes, subject: str, headers: Any) -> tuple[Signed | None, str | None]:
    """The event in a message, checked as the log needs it: a catalog event on its own subject,
    signed by a service that may produce it, in canonical form, storable. Else why not."""
    try:
        event = decode(body, subject)
        payload = json.loads(body)
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        return None, str(exc)
    signer, signature = header(headers, SIGNER_HEADER), header(headers, SIGNATURE_HEADER)
    verdict = trusted.check(body, signer, signature, event.type, event.data)
    if not verdict.ok:
        return None, f"{verdict.problem} (claimed actor {event.actor!r})"
    canonical = canonical_json(payload)
    if canonical.encode() != body:
        return None, "not in canonical form (sorted keys, no spaces): the signature would not verify from the log"
    if (problem := unstorable(payload)) is not None:
        return None, problem
    return Signed(event, payload, canonical, verdict.service, signer, signature), None


def unstorable(value: Any, where: str = "event") -> str | None:
    """Why PostgreSQL's jsonb (or UTF-8) cannot hold `value`, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} holds a NUL character, which the log cannot store"
        if _SURROGATE.search(value):
            return f"{where} holds a lone surrogate, which is not valid Unicode"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if (problem := unstorable(key, where) or unstorable(item, f"{where}.{key}")) is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := unstorable(item, f"{where}[{index}]")) is not None:
                return problem
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
# SQLSTATE classes that mean "this data cannot be stored": data exceptions (an untranslatable
# character, a value out of range), integrity violations, program limits (too large). Every other
# database error (connection, shutdown, resources, deadlocks, a privilege missing after a bad
# migration) is retried: the log waits, and readiness says it is behind, rather than dropping events.
_DATA_CLASSES = ("22", "23", "54")
_AWAY = (OSError, TimeoutError, ConnectionError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def refused_as_data(exc: BaseException) -> bool:
    """True when writing failed because of what the events hold (a value PostgreSQL refuses, a
    fold that cannot take them), not because the database is away: retrying would fail forever."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UnicodeError):
            return True
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state[:2] in _DATA_CLASSES
        if isinstance(current, _AWAY) or getattr(current, "connection_invalidated", False):
            return False
        if type(current).__module__.startswith("asyncpg") and "Connection" in type(current).__name__:
            return False
        current = getattr(current, "orig", None) or current.__cause__
    return not isinstance(exc, _AWAY) and type(exc).__module__.split(".")[0] not in ("sqlalchemy", "asyncpg")


async def _quietly(call: Any) -> None:
    with contextlib.suppress(Exception):  # the broker away too: a redelivery is tolerated by the append
        await call
