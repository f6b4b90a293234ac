"""Broker setup: the AGENTOPS stream, durable consumers, publishing with dedup ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import nats
from faststream import BaseMiddleware
from faststream.exceptions import NackMessage
from faststream.nats import JStream, NatsBroker, PullSub, StorageType
from faststream.nats.publisher.usecase import LogicPublisher
from nats.js.api import StreamConfig
from pydantic import ValidationError

from shared.events import CATALOG, Event, MessageRejected, MessageRejectedData, subject_for
from shared.settings import Settings

log = logging.getLogger("agentops.broker")

ALL_EVENTS = "agentops.>"
# Redelivery delay for a message whose handler failed in a way that may pass (a database restart).
RETRY_DELAY_SECONDS = 1.0


def servers(nats_url: str) -> list[str]:
    """NATS_URL may list several cluster nodes, comma-separated."""
    return [u.strip() for u in nats_url.split(",") if u.strip()]


def stream_for(settings: Settings) -> JStream:
    return JStream(
        settings.stream_name,
        subjects=[ALL_EVENTS],
        storage=StorageType.FILE,
        duplicate_window=settings.dedup_window_seconds,
        num_replicas=settings.stream_replicas,
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
    """Create or update the stream; safe to call from every service at every start."""
    nc = await nats.connect(servers(nats_url), connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        config = stream_config(settings)
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)
    finally:
        await nc.close()


def build_broker(settings: Settings, service: str) -> NatsBroker:
    broker = NatsBroker(
        servers(settings.nats_url or "nats://127.0.0.1:4222"),
        name=f"agentops-{service}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        middlewares=(_rejecting_middleware(service, settings.stream_name),),
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
    """A durable pull consumer named for the service; replicas of the service share it."""
    subject = subject_for(event_type) if event_type != ">" else ALL_EVENTS
    consumer = f"{service}-{event_type.replace('.', '-').replace('>', 'all')}"
    return broker.subscriber(
        subject,
        stream=stream_for(settings),
        durable=consumer,
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        max_workers=max_workers,
        title=f"{service}:{event_type}",
    )


def is_connected(broker: NatsBroker) -> bool:
    try:
        return bool(broker.connection.is_connected)
    except Exception:  # not started yet
        return False


class Publisher:
    """Publishes catalog events through documented publishers, with Nats-Msg-Id for dedup."""

    def __init__(self, broker: NatsBroker, settings: Settings, types: Iterable[str], timeout: float = 5.0) -> None:
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
        headers = {"Nats-Msg-Id": str(event.id)}
        body = event.model_dump_json().encode()
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


def _rejecting_middleware(service: str, stream: str) -> type[BaseMiddleware]:
    class RejectUndecodable(BaseMiddleware):
        """An undecodable message is recorded as `message.rejected` and acked, never retried;
        any other failure is nacked with a delay so the broker redelivers it."""

        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            try:
                return await call_next(msg)
            except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                await _record_rejection(self.context, service, stream, msg, exc)
                return None
            except NackMessage:
                raise
            except Exception as exc:
                log.warning("%s: handler failed, redelivering in %ss: %r", service, RETRY_DELAY_SECONDS, exc)
                raise NackMessage(delay=RETRY_DELAY_SECONDS) from exc

    return RejectUndecodable


async def _record_rejection(context: Any, service: str, stream: str, msg: Any, exc: Exception) -> None:
    body: bytes = getattr(msg, "body", b"") or b""
    subject = getattr(msg.raw_message, "subject", "?") if hasattr(msg, "raw_message") else "?"
    plan_id = _plan_id_of(body)
    log.error("%s: rejected undecodable message on %s: %s", service, subject, _short(exc))
    event = MessageRejected(
        plan_id=plan_id,
        actor=service,
        data=MessageRejectedData(
            service=service,
            subject=subject,
            error=_short(exc),
            body_excerpt=body[:500].decode("utf-8", "replace"),
        ),
    )
    broker = context.get("broker")
    await broker.publish(
        event.model_dump_json().encode(), event.subject, headers={"Nats-Msg-Id": str(event.id)}, stream=stream
    )


def _plan_id_of(body: bytes) -> str:
    try:
        value = json.loads(body).get("plan_id")
    except Exception:
        return "unknown"
    return value if isinstance(value, str) and 0 < len(value) <= 200 else "unknown"


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:500]
