"""Gateway: the REST API. Publishes intents and decisions, reads the projections, never writes them."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.gateway import approvals_api, audit_api, budgets_api, dashboard, openapi, schedules_api, slack
from services.gateway.api import SERVICE, Gateway, router
from services.gateway.auth import KeyStore
from services.gateway.errors import install_error_handlers
from services.gateway.feed import Feed
from services.gateway.limits import BodyLimit, PlainText
from services.gateway.readmodel import ReadModel
from services.gateway.sse import ServerSend
from services.gateway.waiter import DECISIVE, PlanWaiter
from shared.bus import Bus
from shared.db import make_engine, refuse_superuser
from shared.settings import Settings

# FastAPI's own OpenTelemetry (FastAPI 0.16x) turns itself on once a global tracer provider is set,
# as `agentops serve` sets one: a second server span per request, a span per dependency, endpoint
# and serialization on top (about 0.45 ms a request in-process, `python -m bench.tracing_http`),
# and the query string in `url.query`, where the seed's SSE clients put their API key. The
# gateway's server span is services/runtime/telemetry.py's `ServerSpans`; its metrics are
# Prometheus's; its logs are its own.
NATIVE_TELEMETRY_OFF: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)


def create_app(settings: Settings, bus: Bus, asyncapi: Callable[[], str] | None = None) -> FastAPI:
    """`asyncapi` gives the AsyncAPI document served at /asyncapi (the runtime builds it from every
    service's declarations)."""
    assert bus.name == SERVICE
    # message.rejected: the Slack callbacks it refused (services/gateway/slack.py)
    publish = bus.publisher(
        [
            "intent.received",
            "approval.decided",
            "deployment.action",
            "budget.set",
            "schedule.set",
            "message.rejected",
        ],
        timeout=3.0,
    )
    waiter = PlanWaiter()
    engine = make_engine(settings.service_database_url)
    feed = Feed(
        engine, buffer=settings.sse_client_buffer, metrics=bus.metrics
    )  # one reader of the log for every live-event client

    # Hearing an outcome only completes the request holding it, whose HTTP span already spans the
    # wait: a consume span there would sit on every command's decisive path and say nothing more.
    bus.trace_only(lambda event_type: False)
    for event_type in DECISIVE:
        # Core (not durable) subscriptions: each gateway replica hears every outcome and
        # completes the requests it is holding.
        @bus.listen(event_type)
        async def _offer() -> None:
            waiter.offer(bus.current_event())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await refuse_superuser(engine, SERVICE)
        await bus.wait_for_stream()
        await bus.start()
        await feed.start()
        try:
            yield
        finally:
            await app.state.slack.close()
            await feed.stop()
            await bus.stop()
            await engine.dispose()

    app = FastAPI(
        title="AgentOps",
        version="0.1.0",
        lifespan=lifespan,
        description="Deploy models to SageMaker from plain commands: planned, guarded, approved, audited.",
        **NATIVE_TELEMETRY_OFF,
    )
    app.state.keys = KeyStore(settings)
    app.state.slack = slack.Slack(settings, app.state.keys)
    app.state.gateway = Gateway(settings, bus, publish, waiter, ReadModel(engine), feed, asyncapi)
    app.include_router(router)
    app.include_router(approvals_api.router)
    app.include_router(audit_api.router)
    app.include_router(slack.router)
    app.include_router(budgets_api.router)
    app.include_router(schedules_api.router)
    dashboard.install(app, settings)  # last: it only adds the build's own files
    install_error_handlers(app)
    openapi.install(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type", "Authorization", "X-API-Key", "Idempotency-Key"],
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(PlainText)  # nothing else sees a path, query or header that is not text
    app.add_middleware(ServerSend)  # outermost: live-event chunks go straight to the server (sse.py)
    return app
