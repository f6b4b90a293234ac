"""A consumer of every event in stream order, a batch at a time (the auditor's loop).

A plain nats-py pull loop rather than a FastStream subscriber, because the log must follow the
stream's order exactly and FastStream's batch loop does not hold it: it drops a fetched batch
when nats-py raises asyncio.TimeoutError (it catches only nats' own TimeoutError) and, with a
short wait, leaves pull requests behind that capture later messages until they are redelivered.

The rules: at most one batch is in flight (max_ack_pending = batch size); the handler returns
only once the batch is dealt with (it retries in place, with in-progress heartbeats, while its
store is away), and nothing after it is fetched meanwhile; the batch is acknowledged after the
handler returns. A crash leaves the batch unacknowledged: the next consumer to start waits out
ack_wait so that batch is redelivered before anything newer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.errors
from faststream.nats import NatsBroker
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind

from shared.broker import ALL_EVENTS
from shared.settings import Settings

log = logging.getLogger("agentops.ordered")
RETRY_SECONDS = 1.0
TAKE_WAITING = 0.002  # seconds a pull for what is already waiting may take


class PullLoop(ABC):
    """A loop over a pull subscription that starts over shortly after any failure (the broker
    away, the consumer being recreated), and its close. Subclasses pull and handle in `_loop`."""

    durable: str
    sub: Any = None
    stopping: bool = False

    async def run(self) -> None:
        failing = False  # since the last turn that went through (said once, not every retry)
        while not self.stopping:
            try:
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failing:
                    log.debug("%s: still failing: %r", self.durable, exc)
                else:
                    log.exception("%s: consuming failed; retrying every %ss", self.durable, RETRY_SECONDS)
                failing = True
                self.sub = None
                await asyncio.sleep(RETRY_SECONDS)
            else:
                if failing:
                    log.warning("%s: consuming again", self.durable)
                failing = False

    @abstractmethod
    async def _loop(self) -> None:
        """Pull and handle (returning or raising ends one turn of `run`)."""

    async def close(self) -> None:
        """Unsubscribe before the connection closes (else its drain waits out its timeout)."""
        self.stopping = True
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
            self.sub = None


class OrderedConsumer(PullLoop):
    def __init__(
        self,
        broker: NatsBroker,
        settings: Settings,
        durable: str,
        handle: Callable[[list[Any]], Awaitable[Sequence[str | None] | None]],
        *,
        batch: int,
        linger_ms: float,
        metrics: Any = None,
    ) -> None:
        self.metrics = metrics
        self.broker, self.settings, self.durable, self.handle = broker, settings, durable, handle
        self.batch, self.linger = batch, linger_ms / 1000
        self.sub: JetStreamContext.PullSubscription | None = None
        self.stopping = False
        self.traced: tuple[Any, str] | None = None  # (tracer, service) when tracing is on

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = self.broker.connection.jetstream()
        config = ConsumerConfig(ack_wait=self.settings.ack_wait_seconds, max_ack_pending=self.batch)
        sub = await js.pull_subscribe(ALL_EVENTS, durable=self.durable, stream=self.settings.stream_name, config=config)
        info = await sub.consumer_info()
        if info.num_ack_pending:
            # A batch a consumer was handling when it died is still out. JetStream hands it out again
            # before anything newer once ack_wait has passed; fetching sooner would take newer
            # events first and handle them out of order.
            log.warning(
                "%s: %d events still out from before; waiting %ss",
                self.durable,
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
                msgs = await self.sub.fetch(self.batch, timeout=2.0)
            except (TimeoutError, nats.errors.TimeoutError):
                if self.metrics is not None:
                    self.metrics.audit_lag.set(0)  # nothing came: nothing waits
                continue
            if self.linger and len(msgs) < self.batch:
                # A moment for the rest of a burst (one command makes several events): fewer,
                # larger batches cost far less than one per event. Then take what is there: a
                # pull that finds nothing waits out its whole timeout (it was 200 ms, which every
                # event arriving alone, such as a deployment's last status, waited on top of the
                # linger), so it is given only the time the server needs to answer. What it
                # sends after that waits in the subscription for the next fetch, in order.
                await asyncio.sleep(self.linger)
                with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                    msgs += await self.sub.fetch(self.batch - len(msgs), timeout=TAKE_WAITING)
            started = time.time_ns()
            plans = await self.handle(msgs)
            if self.metrics is not None and msgs:
                self.metrics.audit_batch.observe(len(msgs))
                with contextlib.suppress(Exception):  # what the stream still holds after this batch
                    self.metrics.audit_lag.set(msgs[-1].metadata.num_pending)
            if self.traced is not None:
                self._spans(msgs, started, plans or ())
            for msg in msgs:
                await msg.ack()

    def _spans(self, msgs: list[Any], started: int, plans: Sequence[str | None]) -> None:
        """A span per message, in the trace the message carries (the batch's time is its time),
        named for the plan the handler found in it (`plans`, in the order of `msgs`)."""
        tracer, service = self.traced  # type: ignore[misc]
        for i, msg in enumerate(msgs):
            span = tracer.start_span(
                f"{msg.subject} process",
                context=extract(msg.headers or {}),
                kind=SpanKind.CONSUMER,
                start_time=started,
                attributes={
                    "agentops.service": service,
                    "messaging.system": "nats",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": msg.subject,
                    "messaging.message.id": str((msg.headers or {}).get("Nats-Msg-Id", "")),
                    "messaging.batch.message_count": len(msgs),
                },
            )
            if i < len(plans) and plans[i] is not None:
                span.set_attribute("agentops.plan_id", str(plans[i]))
            span.end()
