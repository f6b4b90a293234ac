"""The auditor's consumer: every event, in stream order, a batch per transaction.

A plain nats-py pull loop rather than a FastStream subscriber, because the log must follow the
stream's order exactly and FastStream's batch loop does not hold it: it drops a fetched batch
when nats-py raises asyncio.TimeoutError (it catches only nats' own TimeoutError) and, with a
short wait, leaves pull requests behind that capture later messages until they are redelivered.

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
import logging
from typing import Any

import nats.errors
from faststream.nats import NatsBroker
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auditor.store import append_many
from shared.broker import ALL_EVENTS, decode, record_rejection
from shared.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "auditor"
DURABLE = f"{SERVICE}-all"
REPLAY_PREFIX = "agentops.replay."
RETRY_SECONDS = 1.0


class OrderedAuditConsumer:
    def __init__(self, settings: Settings, broker: NatsBroker, engine: AsyncEngine) -> None:
        self.settings, self.broker, self.engine = settings, broker, engine
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
        events = []
        for msg in msgs:
            if msg.subject.startswith(REPLAY_PREFIX):
                continue  # a re-publication of what the log already holds (`agentops audit replay --publish`)
            try:
                events.append(decode(msg.data, msg.subject))
            except (ValidationError, ValueError, UnicodeDecodeError) as exc:
                stream = self.settings.stream_name
                await record_rejection(self.broker, SERVICE, stream, msg.data, msg.subject, msg, exc)
        attempt = 0
        while True:
            try:
                await append_many(self.engine, events)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    return  # unacknowledged: redelivered to whoever consumes next
                attempt += 1
                log.warning("auditor: writing %d events failed (attempt %d), retrying: %r", len(events), attempt, exc)
                for msg in msgs:  # keep the batch ours while we wait
                    await _quietly(msg.in_progress())
                await asyncio.sleep(min(RETRY_SECONDS * attempt, 5.0))
        for msg in msgs:
            await msg.ack()


async def _quietly(call: Any) -> None:
    with contextlib.suppress(Exception):  # the broker away too: a redelivery is tolerated by the append
        await call
