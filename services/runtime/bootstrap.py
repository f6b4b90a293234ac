"""The one place that wires services: a `Messaging` runtime per service identity, handed to the
service's `create_app` (which sees it as `shared.bus.Bus`) with the ports it may be given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from services.runtime import telemetry
from services.runtime.messaging import Messaging, Silent, report_silent
from shared.broker import load_identity
from shared.settings import Settings

# The order `agentops up` starts them in: the log first, the API last.
SERVICES = ("auditor", "planner", "guardian", "executor", "notifier", "gateway")


def messaging(
    settings: Settings,
    service: str,
    on_silent: Silent = report_silent,
    tracer_provider: TracerProvider | None = None,
) -> Messaging:
    # The gateway only listens on core subscriptions: what it refuses, the stream's durable
    # consumers refuse and record as well, so it does not record rejections itself.
    identity = load_identity(settings, service)
    return Messaging(
        settings,
        identity,
        record_rejections=service != "gateway",
        on_silent=on_silent,
        tracer_provider=tracer_provider,
    )


def build(
    service: str,
    settings: Settings,
    on_silent: Silent = report_silent,
    tracer_provider: TracerProvider | None = None,
    on_bus: Callable[[Messaging], None] | None = None,
    **ports: Any,
) -> Any:
    """The app of `service` (FastStream, or FastAPI for the gateway). `ports` replace the default
    adapters its create_app accepts (stores, backends, targets), as tests do. Traces follow the
    OTEL_* variables unless a `tracer_provider` is given (tests: an in-memory one)."""
    provider = tracer_provider or telemetry.from_environment(service)
    bus = messaging(settings, service, on_silent, provider)
    if on_bus is not None:
        on_bus(bus)
    if settings.metrics_port and service != "gateway":
        bus.metrics.serve(settings.metrics_port, settings.metrics_host)
    if provider is not None:
        telemetry.instrument_clients(provider)
    if service == "gateway":
        from services.gateway.app import create_app as gateway
        from services.runtime.asyncapi import document

        app = gateway(settings, bus, asyncapi=document, **ports)
        if provider is not None:
            telemetry.instrument_api(app, provider)
        return app
    if service == "planner":
        from services.planner.app import create_app as planner

        return planner(settings, bus, **ports)
    if service == "guardian":
        from services.guardian.app import create_app as guardian

        return guardian(settings, bus, **ports)
    if service == "executor":
        from services.executor.app import create_app as executor

        return executor(settings, bus, **ports)
    if service == "auditor":
        from services.auditor.app import create_app as auditor

        return auditor(settings, bus, **ports)
    if service == "notifier":
        from services.notifier.app import create_app as notifier

        return notifier(settings, bus, **ports)
    raise SystemExit(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
