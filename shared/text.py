"""The one rule for text that crosses our boundary: no NUL, no other control characters (but tab
and line breaks), no lone surrogates. The API applies it to every body field, path segment, query
parameter and header before anything is published; the auditor's rejections use `safe_text`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator

_BAD = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ud800-\\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be accepted as text, or None."""
    found = _BAD.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "contains a control character (NUL)"
    if "\ud800" <= char <= "\udfff":
        return "contains a lone surrogate (not valid Unicode)"
    return f"contains a control character (U+{ord(char):04X})"


def tree_problem(value: Any, where: str = "body") -> str | None:
    """The first text in a decoded JSON value (keys too) that breaks the rule, and where."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{where} {problem}: send plain text" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = tree_problem(key, f"{where} key") if isinstance(key, str) else None
            if found or (found := tree_problem(item, f"{where}.{key}")):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := tree_problem(item, f"{where}[{index}]"):
                return found
    return None


def safe_text(value: Any, limit: int = 500) -> str:
    """Any value as text that every store and terminal takes: what breaks the rule becomes U+FFFD,
    and it is cut to `limit` characters."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _BAD.sub("\ufffd", str(value)[:limit])


def _utc(value: datetime) -> datetime:
    """A time as UTC (a time without a zone is taken as UTC), refused if UTC cannot hold it."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC (years 1 to 9999)") from None


UtcTime = Annotated[datetime, AfterValidator(_utc)]


def slack_escape(text: str) -> str:
    """Slack's three control characters escaped, so text from a command or a plan can never
    become a link, a mention or a broadcast in a Slack message (notifier and gateway alike)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
