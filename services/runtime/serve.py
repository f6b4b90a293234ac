"""Run one service in this process: what `agentops up` starts once per service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from shared.errors import StartupError
from shared.settings import Settings

SERVICES = ("auditor", "planner", "guardian", "executor", "notifier", "gateway")


def build(service: str, settings: Settings) -> Any:
    if service == "gateway":
        from services.gateway.app import create_app as gateway

        return gateway(settings)
    if service == "planner":
        from services.planner.app import create_app as planner

        return planner(settings)
    if service == "guardian":
        from services.guardian.app import create_app as guardian

        return guardian(settings)
    if service == "executor":
        from services.executor.app import create_app as executor

        return executor(settings)
    if service == "auditor":
        from services.auditor.app import create_app as auditor

        return auditor(settings)
    if service == "notifier":
        from services.notifier.app import create_app as notifier

        return notifier(settings)
    raise SystemExit(f"unknown service {service!r}: one of {', '.join(SERVICES)}")


def serve(service: str, settings: Settings) -> None:
    try:
        _serve(service, settings)
    except StartupError as exc:
        raise SystemExit(f"{service}: {exc}") from None


def _serve(service: str, settings: Settings) -> None:
    settings.require_infrastructure(service)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    app = build(service, settings)
    if service == "gateway":
        import uvicorn

        uvicorn.run(
            app,
            host=settings.gateway_host,
            port=settings.gateway_port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        return
    run(app.run())


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's loop on uvloop where it exists (as uvicorn does for the gateway): the
    services spend much of their time in the event loop and socket writes, where uvloop is
    faster. Plain asyncio elsewhere (Windows)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
