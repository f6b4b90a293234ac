"""What a service's wiring (`create_app`) may ask of the messaging runtime.

The runtime itself (services/runtime/messaging.py) is built by services/runtime/bootstrap.py and
passed in; services see only this contract, so they never import the runtime or each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from faststream import FastStream
from faststream.nats import NatsBroker

from shared.broker import Identity
from shared.events import Event

Publish = Callable[[Event], Awaitable[None]]


class Consumer(Protocol):
    """A long-running consumer loop (the auditor's ordered one); `stopping` ends it."""

    stopping: bool

    async def run(self) -> None: ...
    async def close(self) -> None: ...


class MetricsPort(Protocol):
    """A service's own Prometheus metrics (named once, created on first use)."""

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any: ...
    def histogram(
        self, name: str, documentation: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] | None = None
    ) -> Any: ...
    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any: ...
    def exposition(self) -> bytes: ...


class Bus(Protocol):
    identity: Identity
    broker: NatsBroker

    @property
    def metrics(self) -> MetricsPort: ...

    @property
    def name(self) -> str: ...

    def durable(self, event_type: str, *, max_workers: int = 1) -> Any:
        """Decorates a handler of `event_type` (">" for every type) on this service's durable
        consumer, `max_workers` handlers at a time."""

    def listen(self, event_type: str) -> Any:
        """Decorates a handler that hears every `event_type` event on a core subscription."""

    def ordered(
        self,
        durable: str,
        handle: Callable[[list[Any]], Awaitable[Sequence[str | None] | None]],
        *,
        batch: int,
        linger_ms: float,
    ) -> Consumer:
        """Every event in stream order, `handle`d a batch at a time and acknowledged after it."""

    def publisher(self, types: Iterable[str], timeout: float = 5.0) -> Publish:
        """A signed publisher for these event types."""

    def trace_only(self, wanted: Callable[[str], bool]) -> None:
        """With tracing on, make consume spans only for the event types `wanted` says this service
        acts on (the notifier: the types some target asked for); others pass through unrecorded,
        their trace context carried on."""

    def handles_only(self, types: Iterable[str]) -> None:
        """This service acts only on these event types (the notifier: the types some webhook
        target asked for). Its durable consumer of every type is filtered to them (and their
        replays) when the service starts, keeping its position, so the broker delivers nothing
        else; a message of another type that still arrives is acknowledged unread, neither decoded
        nor verified, since nothing here would be done with it (the auditor still checks and
        keeps every event)."""

    def current_message(self) -> Any: ...
    def current_event(self) -> Event: ...
    def deliveries(self) -> int: ...
    def is_connected(self) -> bool: ...
    async def wait_for_stream(self, timeout: float = 60.0) -> None: ...

    async def reject(self, body: bytes, subject: str, raw: Any, reason: str, headers: Any = None) -> None:
        """Record `message.rejected` for a message nobody may act on."""

    async def start(self) -> None:
        """Connect and start consuming (what `app` does through its hooks; the gateway, which
        runs under uvicorn rather than FastStream, calls it from its lifespan)."""

    async def stop(self) -> None:
        """Stop consuming (a handler under way finishes) and disconnect."""

    def app(self) -> FastStream:
        """A FastStream app over the broker that waits for the stream, consumes and watches its
        consumers."""
