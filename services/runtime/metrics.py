"""Prometheus metrics of one service process, in a registry of its own (no global state).

What each consumer receives and processes (with latency histograms) and what each publisher sends
is counted in FastStream's Prometheus series (`Flow`, the same names and labels as its middleware);
the runtime adds what only it sees (rejections, redeliveries, each durable consumer's pending and
ack-pending counts, the auditor's batches and lag), and services add their own through
`Bus.metrics` (commands by outcome, SageMaker calls, LLM fallbacks). The gateway serves them at
/metrics; every other service on METRICS_PORT.
"""

from __future__ import annotations

import threading
import time
from functools import cached_property
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

PREFIX = "agentops"


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._custom: dict[str, Any] = {}
        self.rejected = self.counter(
            "messages_rejected",
            "messages refused as not authentic catalog events (recorded as message.rejected)",
            ("service", "subject"),
        )
        self.redelivered = self.counter(
            "messages_redelivered",
            "messages handled again after a failed or unacknowledged delivery",
            ("service", "subject"),
        )
        self.pending = self.gauge("consumer_pending", "events waiting in a durable consumer", ("service", "consumer"))
        self.ack_pending = self.gauge(
            "consumer_ack_pending",
            "events delivered to a durable consumer and not yet acknowledged",
            ("service", "consumer"),
        )
        self.audit_batch = self.histogram(
            "audit_batch_size",
            "events per batch the auditor appends in one transaction",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
        )
        self.audit_lag = self.gauge("audit_lag_events", "events on the stream the auditor has not recorded yet")

    @cached_property
    def flow(self) -> Flow:
        """What each subject's consumers and publishers count (FastStream's message series)."""
        from faststream.prometheus.container import MetricsContainer

        return Flow(MetricsContainer(self.registry, metrics_prefix=PREFIX, custom_label_names=()), self.service)

    def middleware(self) -> Any:
        """The FastStream middleware that counts every message consumed and published."""
        return self.flow.middleware()

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        """A service's own counter (created once, by name)."""
        if name not in self._custom:
            self._custom[name] = Counter(f"{PREFIX}_{name}", documentation, list(labels), registry=self.registry)
        return self._custom[name]  # type: ignore[no-any-return]

    def histogram(
        self, name: str, documentation: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] | None = None
    ) -> Histogram:
        """A service's own histogram; `buckets` (upper bounds, seconds) when the default's, made for
        request latencies up to 10 s, would not tell the values apart (time to an approval)."""
        if name not in self._custom:
            self._custom[name] = Histogram(
                f"{PREFIX}_{name}",
                documentation,
                list(labels),
                registry=self.registry,
                buckets=buckets or Histogram.DEFAULT_BUCKETS,
            )
        return self._custom[name]  # type: ignore[no-any-return]

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        if name not in self._custom:
            self._custom[name] = Gauge(f"{PREFIX}_{name}", documentation, list(labels), registry=self.registry)
        return self._custom[name]  # type: ignore[no-any-return]

    def exposition(self) -> bytes:
        """The Prometheus text of everything in this registry."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Prometheus text on http://host:port/metrics, from a thread of its own: a scrape never
        waits on (or blocks) a handler."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._server: tuple[Any, threading.Thread] = (server, thread)


class Flow:
    """FastStream's consume and publish series, the same families, names and labels its
    Prometheus middleware (`faststream.nats.prometheus`) records, so dashboards and alert rules
    read them alike: messages received (count, size, in process), processed (count by status,
    duration, exceptions), published (count by status, duration, exceptions).

    Not that middleware itself: per message it builds a middleware object and a settings provider
    and resolves each of its six or three series by its labels again (a `labels(**kwargs)` lookup
    each); here a subject's series are resolved the first time it is seen and kept. What counting
    costs the decisive p50, three systems side by side (none, FastStream's, this), 500 commands
    each, two runs: +3.8 % and +4.5 % with FastStream's middleware, +1.2 % and +0.7 % with this."""

    def __init__(self, container: Any, app: str) -> None:
        self.container, self.app = container, app
        self._consumed: dict[str, Consumed] = {}
        self._published: dict[str, Published] = {}

    def consumed(self, subject: str) -> Consumed:
        series = self._consumed.get(subject)
        if series is None:
            series = self._consumed[subject] = Consumed(self.container, self.app, subject)
        return series

    def published(self, destination: str) -> Published:
        series = self._published.get(destination)
        if series is None:
            series = self._published[destination] = Published(self.container, self.app, destination)
        return series

    def middleware(self) -> Any:
        from faststream import BaseMiddleware
        from faststream.exceptions import IgnoredException
        from faststream.prometheus.consts import (
            PROCESSING_STATUS_BY_ACK_STATUS,
            PROCESSING_STATUS_BY_HANDLER_EXCEPTION_MAP,
        )
        from faststream.response import PublishType

        flow = self

        class Counted(BaseMiddleware):
            async def consume_scope(self, call_next: Any, msg: Any) -> Any:
                series = flow.consumed(msg.raw_message.subject)
                series.received(len(msg.body))
                started, error = time.perf_counter(), None
                try:
                    return await call_next(msg)
                except Exception as raised:
                    error = raised
                    if not isinstance(raised, IgnoredException):
                        series.exception(type(raised).__name__)
                    raise
                finally:
                    status = "acked"
                    if msg.committed or error:
                        found = PROCESSING_STATUS_BY_ACK_STATUS.get(msg.committed) or (
                            PROCESSING_STATUS_BY_HANDLER_EXCEPTION_MAP.get(type(error))
                        )
                        status = found.value if found is not None else "error"
                    series.processed(status, time.perf_counter() - started)

            async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
                if cmd.publish_type is PublishType.REPLY:
                    return await call_next(cmd)
                series = flow.published(cmd.destination)
                started = time.perf_counter()
                try:
                    result = await call_next(cmd)
                except Exception as error:
                    series.done("error", time.perf_counter() - started, len(cmd.batch_bodies), type(error).__name__)
                    raise
                series.done("success", time.perf_counter() - started, len(cmd.batch_bodies))
                return result

        return Counted


class Consumed:
    """One subject's consumer series, resolved once."""

    def __init__(self, c: Any, app: str, subject: str) -> None:
        labels = {"app_name": app, "broker": "nats", "handler": subject}
        self.labels, self.c = labels, c
        self.total = c.received_messages_total.labels(**labels)
        self.size = c.received_messages_size_bytes.labels(**labels)
        self.in_process = c.received_messages_in_process.labels(**labels)
        self.duration = c.received_processed_messages_duration_seconds.labels(**labels)
        self.by_status: dict[str, Any] = {}

    def received(self, size: int) -> None:
        self.total.inc()
        self.size.observe(size)
        self.in_process.inc()

    def processed(self, status: str, seconds: float) -> None:
        self.duration.observe(seconds)
        self.in_process.dec()
        counter = self.by_status.get(status)
        if counter is None:
            counter = self.by_status[status] = self.c.received_processed_messages_total.labels(
                **self.labels, status=status
            )
        counter.inc()

    def exception(self, kind: str) -> None:
        self.c.received_processed_messages_exceptions_total.labels(**self.labels, exception_type=kind).inc()


class Published:
    """One destination's publisher series, resolved once."""

    def __init__(self, c: Any, app: str, destination: str) -> None:
        labels = {"app_name": app, "broker": "nats", "destination": destination}
        self.labels, self.c = labels, c
        self.duration = c.published_messages_duration_seconds.labels(**labels)
        self.by_status = {s: c.published_messages_total.labels(**labels, status=s) for s in ("success", "error")}

    def done(self, status: str, seconds: float, messages: int, error: str | None = None) -> None:
        self.duration.observe(seconds)
        self.by_status[status].inc(messages)
        if error is not None:
            self.c.published_messages_exceptions_total.labels(**self.labels, exception_type=error).inc()
