"""Log lines: plain text on a terminal, or with LOG_FORMAT=json one JSON object per line with
`service`, `level`, `message` and, where known, `plan_id`, `event_id`, `event_type` and `trace_id`,
so the lines of every service for one command join on its trace (or its plan)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

Fields = Callable[[], dict[str, str]]


def no_fields() -> dict[str, str]:
    return {}


class JsonLines(logging.Formatter):
    def __init__(self, service: str, fields: Fields = no_fields) -> None:
        super().__init__()
        self.service, self.fields = service, fields

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": self.service,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        with contextlib.suppress(Exception):  # a log line never fails for want of its context
            entry.update(self.fields())
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_fields(service: str, fields: Fields) -> None:
    """Give the JSON lines of this process the context of the message being handled."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonLines):
            handler.setFormatter(JsonLines(service, fields))
