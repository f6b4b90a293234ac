"""Run one service in this process: what `agentops up` starts once per service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["SERVICES", "run", "serve"]

from services.runtime.bootstrap import SERVICES, build
from services.runtime.supervisor import exit_for_restart
from shared.errors import StartupError
from shared.settings import Settings


def serve(service: str, settings: Settings) -> None:
    try:
        _serve(service, settings)
    except StartupError as exc:
        raise SystemExit(f"{service}: {exc}") from None


def _serve(service: str, settings: Settings) -> None:
    settings.require_infrastructure(service)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    app = build(service, settings, on_silent=exit_for_restart)
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
