"""Prometheus metrics of one service process, in a registry of its own (no global state).

FastStream's Prometheus middleware counts what each subscriber receives and processes (with
latency histograms) and what it publishes; the runtime adds what only it sees (rejections,
redeliveries, each durable consumer's pending and ack-pending counts, the auditor's batches and
lag), and services add their own through `Bus.metrics` (commands by outcome, SageMaker calls, LLM
fallbacks). The gateway serves them at /metrics; every other service on METRICS_PORT.
"""

from __future__ import annotations

import threading
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

    def middleware(self) -> Any:
        from faststream.nats.prometheus import NatsPrometheusMiddleware

        return NatsPrometheusMiddleware(registry=self.registry, app_name=self.service, metrics_prefix=PREFIX)

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
