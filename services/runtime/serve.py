"""Run one service in this process: what `agentops up` starts once per service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["SERVICES", "run", "serve"]

from services.runtime.bootstrap import SERVICES, build
from services.runtime.logs import JsonLines, use_fields
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
    configure_logging(service, settings.log_level, settings.log_format)
    app = build(service, settings, on_silent=exit_for_restart, on_bus=lambda bus: use_fields(service, bus.log_fields))
    if service == "gateway":
        import uvicorn

        uvicorn.run(
            app,
            host=settings.gateway_host,
            port=settings.gateway_port,
            log_level="warning",
            access_log=False,
            log_config=None,  # uvicorn's own lines through the process's handlers (text or JSON)
            timeout_graceful_shutdown=5,
        )
        return
    run(app.run())


# Frameworks that talk at INFO about their own machinery (FastStream's banners and per-task
# shutdown callbacks, nats-py, the BM25 index build): heard only at LOG_LEVEL=debug.
CHATTY = ("faststream", "nats", "bm25s", "uvicorn", "httpx", "botocore", "aiobotocore")


def configure_logging(service: str, level: str, fmt: str = "text") -> None:
    logging.basicConfig(
        level=level.upper(), format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s", force=True
    )
    if fmt == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLines(service))
    # FastStream's logger writes to stderr with a handler and format of its own: through ours instead
    framework = logging.getLogger("faststream")
    framework.handlers.clear()
    framework.propagate = True
    if level != "debug":
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:  # some set their own loggers' levels back
            handler.addFilter(quiet)
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def quiet(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not record.name.startswith(CHATTY)


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
