"""Traces: one trace per command, from the gateway's HTTP span through every service's consume and
publish spans (W3C trace context in the NATS headers), the auditor's writes, SageMaker and LLM calls.

Configured only by the standard OpenTelemetry variables: tracing is on when OTEL_TRACES_EXPORTER
(otlp, console) or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, ..._TRACES_ENDPOINT) is set, off
otherwise (no middleware, no spans: nothing to pay). Export is asynchronous and bounded (a batch
processor with a bounded queue and timeout), so an unreachable collector never slows a command.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
PROPAGATOR = TraceContextTextMapPropagator()


def wanted() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(exporter) or any(os.environ.get(name) for name in ENDPOINTS)


@cache
def from_environment(service: str) -> TracerProvider | None:
    """This process's tracer provider, as the OTEL_* variables describe it, or None (off)."""
    if not wanted():
        return None
    name = os.environ.get("OTEL_SERVICE_NAME") or f"agentops-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter: Any
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(timeout=5)
    # bounded: a collector that is away drops spans rather than holding anything up
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=2048, export_timeout_millis=5000))
    trace.set_tracer_provider(provider)
    return provider


def instrument_clients(provider: TracerProvider) -> None:
    """Spans for the outbound calls a service makes: SageMaker (botocore) and LLM/NIM (httpx)."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if not BotocoreInstrumentor().is_instrumented_by_opentelemetry:
        BotocoreInstrumentor().instrument(tracer_provider=provider)
    if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def instrument_api(app: Any, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # the health probes would be most of the traces and tell nothing; an ASGI "send"/"receive"
    # span per chunk (three per request, one per SSE message) times nothing anyone asks about
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )
    # uvicorn ends by raising the signal it caught again, so the process dies of it and the
    # provider's atexit flush never runs: flush when the app stops instead
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            try:
                yield state
            finally:
                provider.force_flush(timeout_millis=3000)

    app.router.lifespan_context = lifespan


def nats_middleware(provider: TracerProvider) -> Any:
    """FastStream's NATS telemetry middleware (consume and publish spans, the context in the
    message headers), with one change: a publish made inside a span (a consume, a request) is a
    child of that span and carries its context downstream. FastStream's own makes an extra
    "create" span for every publish not made through the consumed message's own middleware
    instance, which is every publish here: a span per event that tells nothing and costs what the
    others do (bench/observability.py)."""
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware
    from faststream.opentelemetry.middleware import BaseTelemetryMiddleware
    from opentelemetry import context

    class InSpan(BaseTelemetryMiddleware[Any]):
        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            headers = getattr(msg, "headers", None) or {}
            if not left_out(headers):
                return await super().consume_scope(call_next, msg)
            # a command the sampler left out: no span, only its context carried on (so what this
            # handler publishes stays out too, and the trace never starts again half-way)
            token = context.attach(PROPAGATOR.extract(headers))
            try:
                return await call_next(msg)
            finally:
                context.detach(token)

        async def publish_scope(self, call_next: Any, msg: Any) -> Any:
            span = trace.get_current_span()
            sampled = span.get_span_context()
            if sampled.is_valid and not sampled.trace_flags.sampled:
                PROPAGATOR.inject(msg.headers)
                return await call_next(msg)
            if self._current_span is None and span.is_recording():
                self._current_span, self._origin_context = span, context.get_current()
            return await super().publish_scope(call_next, msg)

    class Middleware(NatsTelemetryMiddleware):
        def __call__(self, msg: Any | None, /, *, context: Any) -> Any:
            return InSpan(
                msg,
                tracer=self._tracer,
                metrics_container=self._metrics,
                settings_provider_factory=self._settings_provider_factory,
                context=context,
            )

    # counters are Prometheus's job here (services/runtime/metrics.py)
    return Middleware(tracer_provider=provider, include_messages_counters=False)


def left_out(headers: dict[str, str]) -> bool:
    """Whether a message carries the context of a trace the sampler left out (W3C traceparent
    `00-<trace id>-<span id>-<flags>`, the sampled bit clear)."""
    parent = str(headers.get("traceparent", ""))
    try:
        return len(parent) == 55 and not int(parent[53:], 16) & 1
    except ValueError:
        return False


def context_of(headers: dict[str, str] | None) -> Any:
    """The trace context a message carries (its W3C traceparent header), for a span of our own."""
    return extract(headers or {})
