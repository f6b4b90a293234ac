"""Broker setup: authenticated connections, the AGENTOPS stream, durable consumers, publishing
signed events with dedup ids, and refusing (and recording) what may not be acted on."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import nats
from faststream import BaseMiddleware
from faststream.exceptions import NackMessage
from faststream.nats import JStream, NatsBroker, PullSub, StorageType
from faststream.nats.publisher.usecase import LogicPublisher
from nats.js.api import ConsumerConfig, StreamConfig
from pydantic import ValidationError

from shared.errors import StartupError
from shared.events import (
    CATALOG,
    Event,
    MessageRejected,
    MessageRejectedData,
    parse_event,
    subject_for,
)
from shared.identity import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    SIGNERS_BUCKET,
    Signer,
    TrustedSigners,
    durable_name,
    header,
    inbox_prefix,
)
from shared.settings import Settings
from shared.text import safe_text

log = logging.getLogger("agentops.broker")

ALL_EVENTS = "agentops.>"
# Redelivery delay for a message whose handler failed in a way that may pass (a database restart).
RETRY_DELAY_SECONDS = 1.0


def servers(nats_url: str) -> list[str]:
    """NATS_URL may list several cluster nodes, comma-separated."""
    return [u.strip() for u in nats_url.split(",") if u.strip()]


@dataclass(frozen=True)
class Identity:
    """Who this process is on the bus: its key (connection and signatures) and whom it trusts."""

    signer: Signer
    trusted: TrustedSigners

    @property
    def name(self) -> str:
        return self.signer.service


def load_identity(settings: Settings, name: str) -> Identity:
    return Identity(Signer.from_file(name, settings.seed_path(name)), TrustedSigners.from_file(settings.signers_path))


def connect_options(settings: Settings, name: str) -> dict[str, Any]:
    """nats-py connect() options for `name`: its nkey, and replies to its own inboxes only."""
    path = settings.seed_path(name)
    if not path.exists():
        raise StartupError(f"no NATS identity for {name}: {path} is missing (`agentops up` or `agentops nats config`)")
    return {"nkeys_seed_str": path.read_text().strip(), "inbox_prefix": inbox_prefix(name)}


async def connect(settings: Settings, name: str, nats_url: str | None = None, **kwargs: Any) -> nats.NATS:
    """A plain nats-py connection as `name` (operator tools, setup)."""
    url = nats_url or settings.nats_url
    return await nats.connect(servers(url), **connect_options(settings, name), **kwargs)


def stream_for(settings: Settings) -> JStream:
    # Services never create or change the stream (their identities may not): `agentops up` or
    # `agentops migrate` does, as the admin identity (ensure_stream).
    return JStream(
        settings.stream_name,
        subjects=[ALL_EVENTS],
        storage=StorageType.FILE,
        duplicate_window=settings.dedup_window_seconds,
        num_replicas=settings.stream_replicas,
        declare=False,
    )


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream_name,
        subjects=[ALL_EVENTS],
        storage=StorageType.FILE,
        duplicate_window=settings.dedup_window_seconds,
        num_replicas=settings.stream_replicas,
    )


async def ensure_stream(nats_url: str, settings: Settings) -> None:
    """Create or update the stream, as the admin identity (`agentops up`, `agentops migrate`)."""
    nc = await connect(settings, "admin", nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        config = stream_config(settings)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)
    finally:
        await nc.close()


async def wait_for_stream(broker: NatsBroker, settings: Settings, timeout: float = 60.0) -> None:
    """A service starts once the stream exists (it may not create it)."""
    await broker.connect()
    js = broker.connection.jetstream()
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await js.stream_info(settings.stream_name)
            return
        except nats.js.errors.NotFoundError:
            if asyncio.get_running_loop().time() > deadline:
                raise StartupError(
                    f"the {settings.stream_name} stream does not exist: `agentops up` or `agentops migrate` creates it"
                ) from None
            log.warning("waiting for the %s stream to be created", settings.stream_name)
            await asyncio.sleep(1.0)


async def publish_signers(nats_url: str, settings: Settings) -> None:
    """Put the trusted public keys in the `agentops-signers` KV bucket (as the admin identity), so
    whoever verifies an export or a replay can fetch them from the bus as well as the file."""
    from nats.js.api import KeyValueConfig

    trusted = TrustedSigners.from_file(settings.signers_path)
    nc = await connect(settings, "admin", nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        kv = await js.create_key_value(
            KeyValueConfig(
                bucket=SIGNERS_BUCKET, history=16, replicas=settings.stream_replicas, storage=StorageType.FILE
            )
        )
        await kv.put("signers", json.dumps({"keys": trusted.as_dict()}, sort_keys=True).encode())
    finally:
        await nc.close()


def build_broker(settings: Settings, identity: Identity, record_rejections: bool = True) -> NatsBroker:
    """`record_rejections=False` for a service that only listens on core subscriptions (the
    gateway): what it refuses, the stream's durable consumers refuse and record as well."""
    service = identity.name
    broker = NatsBroker(
        servers(settings.nats_url or "nats://127.0.0.1:4222"),
        name=f"agentops-{service}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        **connect_options(settings, service),
        middlewares=(_rejecting_middleware(identity, settings.stream_name, record_rejections),),
        graceful_timeout=10.0,
        # Per-message access logs at DEBUG: at hundreds of events a second they drown real problems.
        log_level=logging.DEBUG,
    )
    return broker


def durable(
    broker: NatsBroker,
    settings: Settings,
    event_type: str,
    service: str,
    *,
    max_workers: int = 1,
) -> Any:
    """A durable pull consumer named for the service; replicas of the service share it.

    (The auditor, which must follow the stream's order, has its own loop: services/auditor/consumer.py.)
    """
    subject = subject_for(event_type) if event_type != ">" else ALL_EVENTS
    consumer = durable_name(service, event_type)
    _WATCHED.setdefault(id(broker), []).append(consumer)
    config = ConsumerConfig(ack_wait=settings.ack_wait_seconds)
    return broker.subscriber(
        subject,
        stream=stream_for(settings),
        durable=consumer,
        config=config,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        max_workers=max_workers,
        # pulled messages come to this service's own inboxes, the only ones it may subscribe to
        inbox_prefix=f"{inbox_prefix(service)}.".encode(),
        title=f"{service}:{event_type}",
    )


_WATCHED: dict[int, list[str]] = {}
# The message a handler is running for, and its decoded event: set by the middleware, which has
# both. A handler parameter like `msg: NatsMessage` is a FastStream Context field, which
# FastStream 0.7 resolves in a worker thread (a thread hop per message); reading this is free.
_DELIVERY: ContextVar[tuple[Any, Event] | None] = ContextVar("agentops_delivery", default=None)


def _delivery() -> tuple[Any, Event]:
    delivery = _DELIVERY.get()
    if delivery is None:
        raise RuntimeError("the current message is only known inside a message handler")
    return delivery


def current_message() -> Any:
    """The broker message (FastStream's NatsMessage) the running handler was called for."""
    return _delivery()[0]


def current_event() -> Event:
    """The catalog event the running handler was called for, decoded once by the middleware."""
    return _delivery()[1]


def deliveries() -> int:
    """How many times JetStream has delivered the running handler's message (1 when it cannot tell)."""
    try:
        return int(current_message().raw_message.metadata.num_delivered)
    except Exception:
        return 1


_IN_FLIGHT = 0  # handlers running in this process (the watchdog's proof of life)


class ConsumerWatchdog:
    """Ends the process when one of its durable consumers has work waiting and nobody pulls it.

    Under kill -9 of nats-server, a FastStream pull loop could go silent after the reconnect (no
    pull request outstanding, events piling up, nothing logged): an accepted approval then waited
    forever. Restarting is the one remedy that always works, and every way of running AgentOps
    restarts a service that exits (`agentops up`, compose's restart policy). Judged on the
    broker's numbers (events pending, no pull request waiting, no delivery or ack progress) and on
    this process having no handler running (a handler waiting on SageMaker or an LLM is busy, not
    silent), for `strikes` checks in a row.
    """

    def __init__(self, broker: NatsBroker, settings: Settings, service: str, interval: float = 5.0, strikes: int = 3):
        self.broker, self.settings, self.service = broker, settings, service
        self.interval, self.strikes = interval, strikes

    async def run(self) -> None:
        names = _WATCHED.get(id(self.broker), [])
        last: dict[str, tuple[int, int]] = {}
        strikes = dict.fromkeys(names, 0)
        while names:
            await asyncio.sleep(self.interval)
            for name in names:
                try:
                    info = await self.broker.connection.jetstream().consumer_info(self.settings.stream_name, name)
                except Exception:  # the broker away: nothing to judge
                    strikes[name] = 0
                    continue
                progress = (info.delivered.consumer_seq or 0, info.ack_floor.consumer_seq or 0)
                silent = bool(info.num_pending or info.num_ack_pending) and not info.num_waiting and not _IN_FLIGHT
                strikes[name] = strikes[name] + 1 if silent and progress == last.get(name) else 0
                last[name] = progress
                if strikes[name] >= self.strikes:
                    log.error(
                        "%s: consumer %s has %s events waiting and nobody pulling them; exiting to be restarted",
                        self.service,
                        name,
                        info.num_pending,
                    )
                    logging.shutdown()
                    os._exit(70)


def watch_consumers(app: Any, broker: NatsBroker, settings: Settings, service: str) -> None:
    """Run a ConsumerWatchdog beside a FastStream app's subscribers."""
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def _watch() -> None:
        tasks.append(asyncio.create_task(ConsumerWatchdog(broker, settings, service).run()))

    @app.on_shutdown
    async def _unwatch() -> None:
        for task in tasks:
            task.cancel()


def is_connected(broker: NatsBroker) -> bool:
    try:
        return bool(broker.connection.is_connected)
    except Exception:  # not started yet
        return False


class Publisher:
    """Publishes catalog events through documented publishers, signed, with Nats-Msg-Id for dedup.

    The body is the event's canonical JSON, the bytes the signature covers and the audit hash
    is computed over."""

    def __init__(
        self, broker: NatsBroker, settings: Settings, types: Iterable[str], signer: Signer, timeout: float = 5.0
    ) -> None:
        self._signer = signer
        self._timeout = timeout
        self._stream = settings.stream_name
        self._publishers: dict[str, LogicPublisher] = {
            t: broker.publisher(
                subject_for(t),
                stream=stream_for(settings),
                schema=CATALOG[t],
                title=f"{subject_for(t)}:publish",
            )
            for t in types
        }
        self._broker = broker

    async def __call__(self, event: Event) -> None:
        publisher = self._publishers.get(event.type)
        body = event.canonical_json().encode()
        headers = {"Nats-Msg-Id": str(event.id), **self._signer.sign(body)}
        if publisher is None:  # message.rejected and other undeclared types
            await self._broker.publish(
                body,
                event.subject,
                headers=headers,
                stream=self._stream,
                timeout=self._timeout,
            )
            return
        await publisher.publish(body, headers=headers, timeout=self._timeout)


def _rejecting_middleware(identity: Identity, stream: str, record: bool = True) -> type[BaseMiddleware]:
    service = identity.name

    class RejectUntrusted(BaseMiddleware):
        """A message that is not an authentic catalog event (undecodable, unsigned, signed by a key
        nobody trusts or by a service that does not own its type, altered after signing) is
        recorded as `message.rejected` and acked, never acted on or retried; any other failure is
        nacked with a delay so the broker redelivers it."""

        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            global _IN_FLIGHT
            _IN_FLIGHT += 1
            try:
                return await self._consume(call_next, msg)
            finally:
                _IN_FLIGHT -= 1

        async def _consume(self, call_next: Any, msg: Any) -> Any:
            # Decode first, apart from the handler: only the message itself can be "undecodable".
            # A JSON or validation error raised inside a handler (a broker reply, a stored record)
            # is a failure like any other and is retried, never mistaken for a bad message.
            try:
                event = _decodable(msg)
                problem = authenticity(identity.trusted, msg.body, getattr(msg, "headers", None), event)
            except (ValidationError, ValueError, UnicodeDecodeError) as exc:
                event, problem = None, str(exc)
            if problem is not None:
                if record:
                    await _record_rejection(self.context, identity, stream, msg, problem)
                else:
                    log.error("%s: ignored a message: %s", service, safe_text(problem, 300))
                return None
            assert event is not None
            token = _DELIVERY.set((msg, event))
            try:
                return await call_next(msg)
            except NackMessage:
                raise
            except Exception as exc:
                log.warning(
                    "%s: handler failed, redelivering in %ss: %r", service, RETRY_DELAY_SECONDS, exc, exc_info=True
                )
                raise NackMessage(delay=RETRY_DELAY_SECONDS) from exc
            finally:
                _DELIVERY.reset(token)

    return RejectUntrusted


def authenticity(trusted: TrustedSigners, body: bytes, headers: Any, event: Event) -> str | None:
    """None when `event` (decoded from `body`) was signed by a service that may produce it."""
    verdict = trusted.check(
        body, header(headers, SIGNER_HEADER), header(headers, SIGNATURE_HEADER), event.type, event.data
    )
    return None if verdict.ok else f"{verdict.problem} (claimed actor {event.actor!r})"


def _decodable(msg: Any) -> Event:
    return decode(msg.body, getattr(getattr(msg, "raw_message", None), "subject", None))


def decode(body: bytes, subject: str | None) -> Event:
    """The catalog event in `body`; raises unless it is one, of the type its subject names."""
    event = parse_event(body)
    checked = (
        isinstance(subject, str) and subject.startswith("agentops.") and not subject.startswith("agentops.replay.")
    )
    if checked and subject != event.subject:
        raise ValueError(f"a {event.type} event on {subject}: each subject carries only its own type")
    return event


async def _record_rejection(context: Any, identity: Identity, stream: str, msg: Any, reason: str) -> None:
    body: bytes = getattr(msg, "body", b"") or b""
    raw = getattr(msg, "raw_message", None)
    headers = getattr(msg, "headers", None)
    await record_rejection(
        context.get("broker"), identity, stream, body, getattr(raw, "subject", "?"), raw, reason, headers
    )


async def record_rejection(
    broker: Any,
    identity: Identity,
    stream: str,
    body: bytes,
    subject: str,
    raw: Any,
    reason: str,
    headers: Any = None,
) -> None:
    """Publish `message.rejected` for a message nobody may act on. Its id derives from the
    message's place in the stream, so a redelivered batch does not record the same rejection twice.
    Whatever the message holds, the record can be stored: text is cleaned, the bytes kept as base64."""
    service = identity.name
    log.error("%s: rejected a message on %s: %s", service, safe_text(subject, 200), safe_text(reason, 300))
    try:
        position = f"{service}:{stream}:{raw.metadata.sequence.stream}"
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"agentops:rejected:{position}")
    except Exception:  # a core message has no stream position
        event_id = uuid.uuid4()
    claimed = _field_of(body, "actor")
    event = MessageRejected(
        id=event_id,
        plan_id=_plan_id_of(body),
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
    data = event.canonical_json().encode()
    headers_out = {"Nats-Msg-Id": str(event.id), **identity.signer.sign(data)}
    await broker.publish(data, event.subject, headers=headers_out, stream=stream, timeout=REJECTION_PUBLISH_SECONDS)


# A rejection is worth waiting for: under a burst of poison every consumer publishes at once.
REJECTION_PUBLISH_SECONDS = 5.0
# What a rejection keeps of the refused message's bytes (the stream holds the original too).
MAX_KEPT_BYTES = 16 * 1024


def _field_of(body: bytes, name: str) -> Any:
    try:
        value = json.loads(body).get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _plan_id_of(body: bytes) -> str:
    value = _field_of(body, "plan_id")
    return value if isinstance(value, str) and PLAN_ID.fullmatch(value) else "unknown"


PLAN_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
