"""The messaging runtime of one service process: its broker, the middleware that refuses (and
records) what may not be acted on, durable consumers, signed publishing, and the watchdog.

One `Messaging` object per service, built by `services/runtime/bootstrap.py` and handed to the
service's `create_app`, which sees it only through the `shared.bus.Bus` contract. Everything it
tracks (the running handler's message, how many handlers run, which consumers to watch) is state
of this object, never of the module: two services in one process (tests) do not share it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

import nats
from faststream import BaseMiddleware, FastStream
from faststream.exceptions import NackMessage
from faststream.nats import NatsBroker, NatsRouter, PullSub
from faststream.nats.publisher.usecase import LogicPublisher
from nats.js.api import ConsumerConfig
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from services.runtime import telemetry
from services.runtime.metrics import Metrics
from services.runtime.ordered import OrderedConsumer, PullLoop
from shared.broker import ALL_EVENTS, Identity, authenticity, connect_options, decode, servers, stream_for
from shared.errors import StartupError
from shared.events import (
    CATALOG,
    SUBJECT_PREFIX,
    Event,
    MessageRejected,
    MessageRejectedData,
    replay_subject_for,
    subject_for,
)
from shared.identity import SIGNER_HEADER, durable_name, header
from shared.settings import Settings
from shared.text import safe_text

log = logging.getLogger("agentops.messaging")
# inside the stream's subjects, and no identity may publish on it: a filter that delivers nothing
NOTHING = SUBJECT_PREFIX + "_nothing"

# How long a stopping service waits for the handlers under way to finish.
GRACEFUL_SECONDS = 10.0
# Redelivery delay for a message whose handler failed in a way that may pass (a database restart).
RETRY_DELAY_SECONDS = 1.0
# A rejection is worth waiting for: under a burst of poison every consumer publishes at once.
REJECTION_PUBLISH_SECONDS = 5.0
# What a rejection keeps of the refused message's bytes (the stream holds the original too).
MAX_KEPT_BYTES = 16 * 1024
PLAN_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")

Silent = Callable[[str, str, int], None]


def report_silent(service: str, consumer: str, pending: int) -> None:
    """The default for a consumer gone silent inside a process we do not own (tests, embedding):
    say so. `agentops serve` passes `services.runtime.supervisor.exit_for_restart` instead."""
    log.error("%s: consumer %s has %s events waiting and nobody pulling them", service, consumer, pending)


class Messaging:
    """Implements `shared.bus.Bus` for one service identity."""

    def __init__(
        self,
        settings: Settings,
        identity: Identity,
        *,
        record_rejections: bool = True,
        on_silent: Silent = report_silent,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings, self.identity, self.on_silent = settings, identity, on_silent
        self.tracer_provider = tracer_provider
        self.traced: Callable[[str], bool] = lambda event_type: True  # which types get consume spans
        self.handled: frozenset[str] | None = None  # the only types read at all (None: every one)
        self.metrics = Metrics(identity.name)
        self.record_rejections = record_rejections
        self.in_flight = 0  # handlers running now (the watchdog's proof of life)
        self.watched: list[str] = []  # durable consumers the watchdog looks after
        self.every_type: list[str] = []  # those of every type (">"), narrowed by `handles_only`
        self.loops: list[DurableLoop] = []  # the pull loops of every durable (`durable`)
        self.listeners: list[tuple[str, Callable[[Event], Awaitable[Any]]]] = []  # core (`listen`)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Any] = []
        # Where the consumers are declared as FastStream subscribers: for the AsyncAPI document and
        # FastStream's in-memory test broker; never included in the running broker.
        self.declared = NatsRouter()
        self._prometheus = self.metrics.middleware()
        self._tracer = tracer_provider.get_tracer("agentops.messaging") if tracer_provider is not None else None
        # The message a handler is running for, and its decoded event: set by the middleware,
        # which has both. (A `msg: NatsMessage` handler parameter is resolved by FastStream 0.7 in
        # a worker thread, a thread hop per message; reading this is free.)
        self._delivery: ContextVar[tuple[Any, Event] | None] = ContextVar(f"delivery:{identity.name}", default=None)
        # FastStream logs through this logger (no handler of its own), so the service's logging
        # settings decide what is shown (services/runtime/serve.py `configure_logging`).
        self.logger = logging.getLogger(f"faststream.agentops.{identity.name}")
        self.broker = NatsBroker(
            servers(settings.nats_url or "nats://127.0.0.1:4222"),
            name=f"agentops-{identity.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            **connect_options(settings, identity.name),
            middlewares=self._middlewares(),
            graceful_timeout=GRACEFUL_SECONDS,
            logger=self.logger,
            # Per-message access logs at DEBUG: at hundreds of events a second they drown real problems.
            log_level=logging.DEBUG,
        )

    @property
    def name(self) -> str:
        return self.identity.name

    # -- consuming -------------------------------------------------------------------------------

    def durable(self, event_type: str, *, max_workers: int = 1) -> Any:
        """A durable pull consumer named for the service; replicas of the service share it.

        Read by plain nats-py pull loops (`DurableLoop`), not FastStream subscribers: each message
        gets the same checks, metrics, spans and acknowledgement (`handle_one`), without
        FastStream's per-message pipeline, which cost the decisive path about 11 % of its
        latency across the planner's and guardian's hops (README, "Growing past one machine").

        `max_workers` handlers at a time are `max_workers` loops on the one durable, each
        fetching a message only when it is free (not one loop feeding a pool of tasks through a
        queue: that costs every message a task and queue hop, `python -m bench.workers`, and
        fetches one message more than its workers can start, whose ack wait then runs while it
        waits in the process, tests/integration/test_durable_workers.py)."""
        subject = subject_for(event_type) if event_type != ">" else ALL_EVENTS
        consumer = durable_name(self.name, event_type)
        self.watched.append(consumer)
        if event_type == ">":
            self.every_type.append(consumer)

        def handles(handler: Any) -> Any:
            call = takes_event(handler)
            self.loops.extend(DurableLoop(self, subject, consumer, call) for _ in range(max_workers))
            # declared for the AsyncAPI document and FastStream's in-memory test broker
            # (tests/infra.py `in_memory`); never started by the runtime
            self.declared.subscriber(
                subject,
                stream=stream_for(self.settings),
                durable=consumer,
                pull_sub=PullSub(batch_size=1),
                title=f"{self.name}:{event_type}",
            )(handler)
            return handler

        return handles

    def listen(self, event_type: str) -> Any:
        """A core subscription: every replica hears every event of the type (the gateway's
        outcomes). Nothing is acknowledged or answered: these subjects are published to JetStream
        as requests, and a core subscriber that answered the request's inbox (FastStream's
        default) raced the stream's PubAck with an empty body, so the publisher sometimes read ""
        as its ack and retried a stored event."""
        subject = subject_for(event_type)

        def handles(handler: Any) -> Any:
            self.listeners.append((subject, takes_event(handler)))
            self.declared.subscriber(subject, title=f"{self.name}:{event_type}", no_reply=True)(handler)
            return handler

        return handles

    async def start(self) -> None:
        """Connect (publishers work from here on), then consume: every durable's loops and every
        core subscription. A service's app does this through its hooks (`app`)."""
        await self.broker.start()
        await self.start_consuming()

    async def start_consuming(self) -> None:
        if self.handled is not None:  # before the loops bind to their durables
            for consumer in self.every_type:
                await self.narrow(consumer, self.narrowed_subjects())
        nc = self.broker.connection
        for subject, call in self.listeners:

            async def heard(raw: Any, call: Callable[[Event], Awaitable[Any]] = call) -> None:
                await self.handle_one(raw, call, acked=False)

            self._subscriptions.append(await nc.subscribe(subject, cb=heard))
        self._tasks = [asyncio.create_task(loop.run()) for loop in self.loops]

    async def stop_consuming(self) -> None:
        """Stop taking messages: a handler under way finishes (up to GRACEFUL_SECONDS), a message
        fetched as the stop began goes back to the stream at once, a loop waiting on a pull is
        cancelled."""
        for loop in self.loops:
            loop.stopping = True
        running = [t for loop, t in zip(self.loops, self._tasks, strict=False) if loop.busy and not t.done()]
        if running:
            await asyncio.wait(running, timeout=GRACEFUL_SECONDS)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for loop in self.loops:
            await loop.close()
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subscriptions = []

    async def stop(self) -> None:
        await self.stop_consuming()
        await self.broker.stop()

    def ordered(
        self,
        durable: str,
        handle: Callable[[list[Any]], Awaitable[Sequence[str | None] | None]],
        *,
        batch: int,
        linger_ms: float,
    ) -> OrderedConsumer:
        """A consumer of every event in stream order, a batch at a time (the auditor's)."""
        consumer = OrderedConsumer(
            self.broker, self.settings, durable, handle, batch=batch, linger_ms=linger_ms, metrics=self.metrics
        )
        if self.tracer_provider is not None:
            consumer.traced = (self.tracer_provider.get_tracer("agentops"), self.name)
        return consumer

    def trace_only(self, wanted: Callable[[str], bool]) -> None:
        self.traced = wanted

    def handles_only(self, types: Iterable[str]) -> None:
        self.handled = frozenset(types)

    def _consumer_config(self, **fields: Any) -> ConsumerConfig:
        return ConsumerConfig(ack_wait=self.settings.ack_wait_seconds, **fields)

    def narrowed_subjects(self) -> list[str]:
        """What a durable of every type is filtered to when this service handles only some types:
        those types and their replays, or (none) a subject no event is ever published on."""
        assert self.handled is not None
        subjects = sorted({s for t in self.handled for s in (subject_for(t), replay_subject_for(t))})
        return subjects or [NOTHING]

    async def narrow(self, consumer: str, subjects: list[str]) -> None:
        """Create the durable filtered to `subjects`, or change an existing one's filter in place:
        it keeps its position, so a type a target asks for after a restart is delivered from
        where the consumer was (what was published meanwhile), never the stream's whole history."""
        js = self.broker.connection.jetstream()
        stream = self.settings.stream_name
        try:
            config = (await js.consumer_info(stream, consumer)).config
        except nats.js.errors.NotFoundError:
            config = self._consumer_config(durable_name=consumer, name=consumer)
        else:
            if sorted(config.filter_subjects or [config.filter_subject or ""]) == subjects:
                return
        config.filter_subject, config.filter_subjects = None, subjects
        try:
            await js.add_consumer(stream, config=config)
        except nats.js.errors.BadRequestError as exc:  # a server before 2.10: one filter, never changed
            log.warning(
                "%s: the server will not narrow consumer %s (%s): every event is delivered and those "
                "of other types are acknowledged unread",
                self.name,
                consumer,
                safe_text(exc, 200),
            )
            return
        log.info("%s: consumer %s now delivers only %s", self.name, consumer, ", ".join(subjects))

    def log_fields(self) -> dict[str, str]:
        """What a log line written while handling a message says about it."""
        delivery = self._delivery.get()
        if delivery is None:
            return {}
        event = delivery[1]
        return {"plan_id": event.plan_id, "event_id": str(event.id), "event_type": event.type}

    def current_message(self) -> Any:
        """The message the running handler was called for (`Delivered`; FastStream's NatsMessage
        in the in-memory test broker: the same fields)."""
        return self._current()[0]

    def current_event(self) -> Event:
        """The catalog event the running handler was called for, decoded once by the middleware."""
        return self._current()[1]

    def deliveries(self) -> int:
        """How many times JetStream has delivered the running handler's message (1 when unknown)."""
        try:
            return int(self.current_message().raw_message.metadata.num_delivered)
        except Exception:
            return 1

    def _current(self) -> tuple[Any, Event]:
        delivery = self._delivery.get()
        if delivery is None:
            raise RuntimeError("the current message is only known inside a message handler")
        return delivery

    # -- publishing ------------------------------------------------------------------------------

    def publisher(self, types: Iterable[str], timeout: float = 5.0) -> Publisher:
        return Publisher(self.broker, self.settings, types, self.identity, timeout)

    async def reject(self, body: bytes, subject: str, raw: Any, reason: str, headers: Any = None) -> None:
        """Publish `message.rejected` for a message nobody may act on. Its id derives from the
        message's place in the stream, so a redelivered batch does not record the same rejection
        twice. Whatever the message holds, the record can be stored: text is cleaned, the bytes
        kept as base64."""
        log.error("%s: rejected a message on %s: %s", self.name, safe_text(subject, 200), safe_text(reason, 300))
        self.metrics.rejected.labels(self.name, safe_text(subject, 100)).inc()
        event = rejection(self.name, self.settings.stream_name, body, subject, raw, reason, headers)
        data = event.canonical_json().encode()
        headers_out = {"Nats-Msg-Id": str(event.id), **self.identity.signer.sign(data)}
        await self.broker.publish(
            data,
            event.subject,
            headers=headers_out,
            stream=self.settings.stream_name,
            timeout=REJECTION_PUBLISH_SECONDS,
        )

    # -- running ---------------------------------------------------------------------------------

    def is_connected(self) -> bool:
        try:
            return bool(self.broker.connection.is_connected)
        except Exception:  # not started yet
            return False

    async def wait_for_stream(self, timeout: float = 60.0) -> None:
        """A service starts once the stream exists (it may not create it)."""
        await self.broker.connect()
        js = self.broker.connection.jetstream()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await js.stream_info(self.settings.stream_name)
                return
            except nats.js.errors.NotFoundError:
                if asyncio.get_running_loop().time() > deadline:
                    raise StartupError(
                        f"the {self.settings.stream_name} stream does not exist: "
                        "`agentops up` or `agentops migrate` creates it"
                    ) from None
                log.warning("waiting for the %s stream to be created", self.settings.stream_name)
                await asyncio.sleep(1.0)

    def app(self) -> FastStream:
        """A FastStream app over this broker that waits for the stream, consumes, and watches its
        consumers."""
        app = FastStream(self.broker, logger=self.logger)
        watchdog: list[asyncio.Task[None]] = []

        @app.on_startup
        async def _stream() -> None:
            await self.wait_for_stream()

        @app.after_startup
        async def _consume() -> None:
            await self.start_consuming()
            watchdog.append(asyncio.create_task(ConsumerWatchdog(self).run()))

        @app.on_shutdown
        async def _stop() -> None:
            for task in watchdog:
                task.cancel()
            await self.stop_consuming()

        app.declared = self.declared  # type: ignore[attr-defined]
        return app

    def _middlewares(self) -> tuple[Any, ...]:
        counted = (self._prometheus, self._middleware())
        if self.tracer_provider is None:  # tracing off: no span is made for any message
            return counted
        # outermost: the consume span (its parent from the message's traceparent) holds the rest
        traced = telemetry.nats_middleware(self.tracer_provider, lambda event_type: self.traced(event_type))
        return (traced, *counted)

    def _middleware(self) -> type[BaseMiddleware]:
        messaging = self

        class RejectUntrusted(BaseMiddleware):
            """A message that is not an authentic catalog event (undecodable, unsigned, signed by a
            key nobody trusts or by a service that does not own its type, altered after signing)
            is recorded as `message.rejected` and acked, never acted on or retried; any other
            failure is nacked with a delay so the broker redelivers it. The runtime's own loops
            run the same checks (`handle_one`); this is them for FastStream's in-memory test
            broker, where the declared subscribers run (tests/infra.py `in_memory`)."""

            async def consume_scope(self, call_next: Any, msg: Any) -> Any:
                messaging.in_flight += 1
                try:
                    return await messaging._consume(call_next, msg)
                finally:
                    messaging.in_flight -= 1

        return RejectUntrusted

    async def handle_one(self, raw: Any, handler: Callable[[Event], Awaitable[Any]], acked: bool = True) -> None:
        """One message, as a FastStream subscriber would handle it: counted (FastStream's
        Prometheus series), in a consume span, checked and handled by `_consume`, then acked; a
        failure that may pass is nacked with a delay so the broker redelivers it. A core
        message (`acked=False`) has nothing to acknowledge or redeliver: a failure is logged."""
        series = self.metrics.flow.consumed(raw.subject)
        series.received(len(raw.data))
        span, token = (
            telemetry.begin_consume(self._tracer, self.traced, raw.subject, raw.headers)
            if self._tracer is not None
            else (None, None)
        )
        started, status = time.perf_counter(), "acked"
        self.in_flight += 1
        try:
            await self._consume(lambda _: handler(self.current_event()), Delivered(raw))
            if acked:
                await raw.ack()
        except Exception as error:
            telemetry.failed(span, error)
            status = "nacked"
            if not isinstance(error, NackMessage):
                series.exception(type(error).__name__)
                log.warning("%s: could not handle a message on %s: %r", self.name, raw.subject, error)
            if acked:
                await raw.nak(delay=RETRY_DELAY_SECONDS)
        finally:
            self.in_flight -= 1
            if token is not None:
                context.detach(token)
            if span is not None:
                span.end()
            series.processed(status, time.perf_counter() - started)

    async def _consume(self, call_next: Any, msg: Any) -> Any:
        # Decode first, apart from the handler: only the message itself can be "undecodable".
        # A JSON or validation error raised inside a handler (a broker reply, a stored record)
        # is a failure like any other and is retried, never mistaken for a bad message.
        subject = getattr(getattr(msg, "raw_message", None), "subject", None)
        if (
            self.handled is not None
            and isinstance(subject, str)
            and telemetry.event_type_of(subject) not in self.handled
        ):
            # nothing here acts on it (a server that cannot filter the consumer, or sent before the
            # filter narrowed): acknowledged unread
            return None
        try:
            event = decode(msg.body, subject)
            problem = authenticity(self.identity.trusted, msg.body, getattr(msg, "headers", None), event)
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            event, problem = None, str(exc)
        if problem is not None:
            if self.record_rejections:
                raw = getattr(msg, "raw_message", None)
                body: bytes = getattr(msg, "body", b"") or b""
                await self.reject(body, getattr(raw, "subject", "?"), raw, problem, getattr(msg, "headers", None))
            else:
                log.error("%s: ignored a message: %s", self.name, safe_text(problem, 300))
            return None
        assert event is not None
        if _delivered(msg) > 1:
            self.metrics.redelivered.labels(self.name, event.subject).inc()
        if self.tracer_provider is not None:
            label(trace.get_current_span(), self.name, event)
        token = self._delivery.set((msg, event))
        log.debug("%s handles %s %s", self.name, event.type, event.id)  # (the lines join on plan_id)
        try:
            return await call_next(msg)
        except NackMessage:
            raise
        except Exception as exc:
            log.warning(
                "%s: handler failed, redelivering in %ss: %r", self.name, RETRY_DELAY_SECONDS, exc, exc_info=True
            )
            raise NackMessage(delay=RETRY_DELAY_SECONDS) from exc
        finally:
            self._delivery.reset(token)


class Publisher:
    """Publishes catalog events through documented publishers, signed, with Nats-Msg-Id for dedup.

    The body is the event's canonical JSON, the bytes the signature covers and the audit hash
    is computed over."""

    def __init__(
        self, broker: NatsBroker, settings: Settings, types: Iterable[str], identity: Identity, timeout: float = 5.0
    ) -> None:
        self._signer, self._timeout, self._stream, self._broker = identity.signer, timeout, settings.stream_name, broker
        self._publishers: dict[str, LogicPublisher] = {
            t: broker.publisher(
                subject_for(t), stream=stream_for(settings), schema=CATALOG[t], title=f"{subject_for(t)}:publish"
            )
            for t in types
        }

    async def __call__(self, event: Event) -> None:
        publisher = self._publishers.get(event.type)
        body = event.canonical_json().encode()
        headers = {"Nats-Msg-Id": str(event.id), **self._signer.sign(body)}
        if publisher is None:  # message.rejected and other undeclared types
            await self._broker.publish(body, event.subject, headers=headers, stream=self._stream, timeout=self._timeout)
            return
        await publisher.publish(body, headers=headers, timeout=self._timeout)


class Delivered:
    """A message of a durable loop or core subscription as the runtime's checks and
    `Bus.current_message` see one (FastStream's NatsMessage has the same fields)."""

    __slots__ = ("body", "headers", "raw_message")

    def __init__(self, raw: Any) -> None:
        self.raw_message, self.body, self.headers = raw, raw.data, raw.headers or {}

    async def in_progress(self) -> None:
        await self.raw_message.in_progress()


class DurableLoop(PullLoop):
    """One pull loop on a durable: each pull takes one message, handled and then acked
    (`Messaging.handle_one`)."""

    def __init__(
        self, messaging: Messaging, subject: str, durable: str, handler: Callable[[Event], Awaitable[Any]]
    ) -> None:
        self.messaging, self.subject, self.durable, self.handler = messaging, subject, durable, handler
        self.busy = False  # handling what it fetched (a stopping service lets that finish)

    async def _loop(self) -> None:
        m = self.messaging
        if self.sub is None:
            js = m.broker.connection.jetstream()
            self.sub = await js.pull_subscribe(
                self.subject, durable=self.durable, stream=m.settings.stream_name, config=m._consumer_config()
            )
        try:
            msgs = await self.sub.fetch(1, timeout=5.0)
        except (TimeoutError, nats.errors.TimeoutError):
            return
        self.busy = True
        try:
            for msg in msgs:
                if self.stopping:  # stopping: it goes back to the stream now, for whoever is left
                    await msg.nak()
                    await m.broker.connection.flush()  # handed back before this returns
                    return
                await m.handle_one(msg, self.handler)
        finally:
            self.busy = False


def takes_event(handler: Callable[..., Awaitable[Any]]) -> Callable[[Event], Awaitable[Any]]:
    """The handler called with the event, whether it takes it (`event: PlanProposed`, as FastStream
    would decode it) or reads it from the bus (`Bus.current_event`)."""
    if inspect.signature(handler).parameters:
        return handler
    return lambda _event: handler()


class ConsumerWatchdog:
    """Calls `on_silent` when one of a service's durable consumers has work waiting and nobody
    pulls it.

    Under kill -9 of nats-server, a FastStream pull loop could go silent after the reconnect (no
    pull request outstanding, events piling up, nothing logged): an accepted approval then waited
    forever. Restarting is the one remedy that always works, and every way of running AgentOps
    restarts a service that exits (`agentops up`, compose's restart policy), so `agentops serve`
    exits there. Judged on the broker's numbers (events pending, no pull request waiting, no
    delivery or ack progress) and on no handler running (a handler waiting on SageMaker or an LLM
    is busy, not silent), for `strikes` checks in a row.
    """

    def __init__(self, messaging: Messaging, interval: float = 5.0, strikes: int = 3) -> None:
        self.messaging, self.interval, self.strikes = messaging, interval, strikes

    async def run(self) -> None:
        m = self.messaging
        last: dict[str, tuple[int, int]] = {}
        strikes = dict.fromkeys(m.watched, 0)
        while m.watched:
            await asyncio.sleep(self.interval)
            for name in m.watched:
                try:
                    info = await m.broker.connection.jetstream().consumer_info(m.settings.stream_name, name)
                except Exception:  # the broker away: nothing to judge
                    strikes[name] = 0
                    continue
                m.metrics.pending.labels(m.name, name).set(info.num_pending or 0)
                m.metrics.ack_pending.labels(m.name, name).set(info.num_ack_pending or 0)
                progress = (info.delivered.consumer_seq or 0, info.ack_floor.consumer_seq or 0)
                silent = bool(info.num_pending or info.num_ack_pending) and not info.num_waiting and not m.in_flight
                strikes[name] = strikes.get(name, 0) + 1 if silent and progress == last.get(name) else 0
                last[name] = progress
                if strikes[name] >= self.strikes:
                    m.on_silent(m.name, name, int(info.num_pending or 0))
                    strikes[name] = 0


def _delivered(msg: Any) -> int:
    try:
        return int(msg.raw_message.metadata.num_delivered)
    except Exception:  # a core message: delivered once
        return 1


def label(span: Any, service: str, event: Event) -> None:
    """What joins a span to the plan it worked on (one command: one trace, one plan id). The
    event's id and type are already the span's `messaging.message.id` and subject: an attribute
    costs its span a few microseconds to set and as many again to export."""
    if span.is_recording():
        span.set_attributes({"agentops.service": service, "agentops.plan_id": event.plan_id})


def rejection(
    service: str, stream: str, body: bytes, subject: str, raw: Any, reason: str, headers: Any = None
) -> MessageRejected:
    """The `message.rejected` record of a refused message (a pure function of what arrived)."""
    try:
        position = f"{service}:{stream}:{raw.metadata.sequence.stream}"
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"agentops:rejected:{position}")
    except Exception:  # a core message has no stream position
        event_id = uuid.uuid4()
    claimed = _field_of(body, "actor")
    plan_id = _field_of(body, "plan_id")
    return MessageRejected(
        id=event_id,
        plan_id=plan_id if isinstance(plan_id, str) and PLAN_ID.fullmatch(plan_id) else "unknown",
        actor=service,
        data=MessageRejectedData(
            service=service,
            subject=safe_text(subject, 200),
            error=safe_text(reason),
            body_excerpt=safe_text(body[:500]),
            claimed_actor=safe_text(claimed, 200) if claimed is not None else "",
            signer_key=safe_text(header(headers, SIGNER_HEADER) or "", 64),
            body_base64=base64.b64encode(body[:MAX_KEPT_BYTES]).decode(),
            body_bytes=len(body),
        ),
    )


def _field_of(body: bytes, name: str) -> str | None:
    try:
        value = json.loads(body).get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None
