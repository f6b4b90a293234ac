"""Traces: one trace per command, from the gateway's HTTP span through every service's consume and
publish spans (W3C trace context in the NATS headers), the auditor's writes, SageMaker and LLM calls.

Configured only by the standard OpenTelemetry variables: tracing is on when OTEL_TRACES_EXPORTER
(otlp, console) or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, ..._TRACES_ENDPOINT) is set, off
otherwise (no middleware, no spans: nothing to pay). Export is asynchronous and bounded (a batch
processor with a bounded queue and timeout), so an unreachable collector never slows a command.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache, lru_cache
from typing import Any

from opentelemetry import context, trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.events import REPLAY_PREFIX, SUBJECT_PREFIX

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
    """The gateway's server span per request (`ServerSpans`), outermost, and a flush of the
    provider's spans when the app stops."""
    app.add_middleware(ServerSpans, provider=provider, names=RouteNames(app))
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


# Not traced: the probes would be most of the traces and tell nothing.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CONTEXT_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class ServerSpans:
    """An HTTP server span per request, with OpenTelemetry's stable HTTP attributes: named
    "METHOD /route/{template}", `http.request.method`, `http.route`, `url.path`, `url.scheme`,
    `server.address`, `server.port`, `client.address`, `network.protocol.version`,
    `http.response.status_code`; a 5xx or an exception is an ERROR span with `error.type`. The
    caller's context (W3C traceparent, or whatever OTEL_PROPAGATORS names) is its parent.

    Not OpenTelemetry's ASGI middleware (opentelemetry-instrumentation-asgi), for two reasons
    measured here. It exports the full URL as `http.url`, query string included, and the seed's
    SSE clients put their API key in the query (`/api/events?api_key=...`): every such key would
    reach the trace store. This span records the path only, never the query. And it costs about
    three times as much a sampled request: it sets each attribute twice, decodes every request
    header once for each of its header lookups, and records four meter instruments per request
    that go nowhere here (metrics are Prometheus's). `python -m bench.tracing_http` times it,
    FastAPI's own telemetry and this one in one run."""

    def __init__(self, app: Any, provider: TracerProvider, names: RouteNames) -> None:
        self.app, self.names = app, names
        self.tracer = provider.get_tracer("agentops.http")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return

        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name in CONTEXT_HEADERS
        }
        parent = extract(carrier) if carrier else None
        name, attributes = self.names.span_details(scope)
        span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes={**attributes, **request_attributes(scope)}
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        status, raised = 0, False

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:  # not a cancellation (a client that went away): no error of ours
            span.record_exception(error)
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            # Starlette's outermost middleware answers it with a 500, outside this one
            status, raised = status or 500, True
            raise
        finally:
            if status:
                span.set_attribute("http.response.status_code", status)
                if status >= 500 and not raised:  # raised: error.type is the exception's
                    span.set_attribute("error.type", str(status))
                    span.set_status(Status(StatusCode.ERROR))
            context.detach(token)
            span.end()


def request_attributes(scope: dict[str, Any]) -> dict[str, Any]:
    """What a server span says about the request besides its route: never the query string (it
    may hold an API key) and no header but the protocol's."""
    attributes: dict[str, Any] = {
        "url.path": str(scope.get("path", "")),
        "url.scheme": str(scope.get("scheme", "http")),
        "network.protocol.version": str(scope.get("http_version", "1.1")),
    }
    if server := scope.get("server"):
        attributes["server.address"], attributes["server.port"] = str(server[0]), int(server[1] or 0)
    if client := scope.get("client"):
        attributes["client.address"] = str(client[0])
    return attributes


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


class RouteNames:
    """The route template a request's path matches, as the span's name and `http.route`. Found
    once per method and path (bounded cache): FastAPIInstrumentor matches every route of the app,
    twice, on every request, sampled or not (about 0.2 ms a request on this machine), and the
    command path is always one path."""

    def __init__(self, app: Any, size: int = 4096) -> None:
        self.app = app
        self.template = lru_cache(maxsize=size)(self._template)

    def span_details(self, scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
        said = str(scope.get("method") or "")
        if said not in METHODS:  # any token is a method to HTTP: not a span name (unbounded)
            return "HTTP", {"http.request.method": "_OTHER", "http.request.method_original": said[:64]}
        route = self.template(scope.get("type", "http"), said, scope.get("path", ""))
        if route is None:
            return said, {"http.request.method": said}
        return f"{said} {route}", {"http.request.method": said, "http.route": route}

    def _template(self, kind: str, method: str, path: str) -> str | None:
        from starlette.routing import Match

        scope = {"type": kind, "method": method, "path": path, "root_path": "", "headers": []}
        partial = None
        for route in routes_of(self.app):
            match, _ = route.matches(scope)
            name = getattr(route, "path", None)
            if match is Match.FULL:
                return None if name is None else str(name)
            if match is Match.PARTIAL and partial is None and name is not None:
                partial = str(name)  # the path, another method: still the route's name
        return partial


def routes_of(app: Any) -> Any:
    """The app's matchable routes: FastAPI 0.137 and later keep the routes of an included router
    under one node, flattened by its public iter_route_contexts; before, they are flat."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI before 0.137.2
        return app.routes
    return iter_route_contexts(app.routes)


def nats_middleware(provider: TracerProvider, traced: Callable[[str], bool] = lambda event_type: True) -> Any:
    """Consume and publish spans for every message, the W3C context carried in the NATS headers:
    a FastStream middleware (its BaseMiddleware hooks), with the OpenTelemetry messaging
    attributes FastStream's own NatsTelemetryMiddleware sets. Not that middleware itself: on this
    machine it costs about 0.1 ms of CPU a hop for a message the sampler left out and 0.4 ms for a
    sampled one (baggage decoded twice, a context repository scope and a meter observation per
    message, and a "create" span per publish not made through the consumed message's own
    instance, which is every publish here); this one 0.02 ms and 0.2-0.3 ms
    (bench/tracing_hop.py measures both in one run).

    A publish is a child of the span it is made in (the request's, a consume's) and the consumer's
    span a child of the publish. A message whose trace the sampler left out makes no span
    anywhere: its context is carried on unchanged, so the trace never starts again half-way.
    Neither does a message of a type the service does not act on (`traced`, by event type: the
    notifier's types no target asked for), which would be a span that says nothing."""
    from faststream import BaseMiddleware

    tracer = provider.get_tracer("agentops.messaging")

    class Traced(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            span, token = begin_consume(tracer, traced, getattr(msg.raw_message, "subject", ""), msg.headers)
            try:
                return await call_next(msg)
            except BaseException as error:
                failed(span, error)
                raise
            finally:
                context.detach(token)
                if span is not None:
                    span.end()

        async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
            current = trace.get_current_span().get_span_context()
            if current.is_valid and not current.trace_flags.sampled:
                PROPAGATOR.inject(cmd.headers)  # carried on, unrecorded
                return await call_next(cmd)
            span = tracer.start_span(
                f"{cmd.destination} publish",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": cmd.destination,
                    "messaging.message.id": str(cmd.headers.get("Nats-Msg-Id", "")),
                },
            )
            # nothing inside the publish makes a span: the context goes into the headers without
            # being attached (start_as_current_span's attach, detach and context manager were
            # about 4 of the ~52 us a sampled consume and publish cost in-process)
            PROPAGATOR.inject(cmd.headers, context=trace.set_span_in_context(span))
            try:
                return await call_next(cmd)
            except BaseException as error:
                failed(span, error)
                raise
            finally:
                span.end()

    return Traced


def begin_consume(tracer: Any, traced: Callable[[str], bool], subject: str, headers: Any) -> tuple[Any, Any]:
    """The consume span of a message on `subject` (None when its trace was left out by the
    sampler or its type is not `traced`) and the token of the context attached for its handler:
    the span's, or the message's own context carried on unrecorded. The caller detaches the token
    and ends the span (`failed` first, if the handler raised). Shared by the FastStream
    middleware and `services/runtime/messaging.py`'s batched consumers."""
    headers = headers or {}
    parent = PROPAGATOR.extract(headers)
    subject = subject or "?"
    if left_out(headers) or not traced(event_type_of(subject)):
        return None, context.attach(parent)
    span = tracer.start_span(
        f"{subject} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": subject,
            "messaging.message.id": str(headers.get("Nats-Msg-Id", "")),
        },
    )
    return span, context.attach(trace.set_span_in_context(span, parent))


def failed(span: Any, error: BaseException) -> None:
    """A span whose work raised: the exception recorded, the span an ERROR."""
    if span is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def event_type_of(subject: str) -> str:
    """`agentops.deployment.status` and its replay `agentops.replay.deployment.status`: the type."""
    return subject.removeprefix(REPLAY_PREFIX).removeprefix(SUBJECT_PREFIX)


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
