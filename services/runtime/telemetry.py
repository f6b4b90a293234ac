"""Traces: one trace per command, from the gateway's HTTP span through every service's consume and
publish spans (W3C trace context in the NATS headers), the auditor's writes, SageMaker and LLM calls.

Configured only by the standard OpenTelemetry variables: tracing is on when OTEL_TRACES_EXPORTER
(otlp, console) or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, ..._TRACES_ENDPOINT) is set, off
otherwise (no middleware, no spans: nothing to pay). Export is asynchronous and bounded (a batch
processor with a bounded queue and timeout), so an unreachable collector never slows a command.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


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

    # the health probes would be most of the traces and tell nothing
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics")


def context_of(headers: dict[str, str] | None) -> Any:
    """The trace context a message carries (its W3C traceparent header), for a span of our own."""
    return extract(headers or {})
