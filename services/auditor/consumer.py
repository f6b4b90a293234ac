"""What the auditor takes from a message: only an authentic catalog event, signed by a service
that may produce it, in canonical form and storable, is appended; anything else, and anything
PostgreSQL refuses to store, becomes a `message.rejected` record and is skipped (the Auditor in
services/auditor/service.py does the recording)."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy.exc
from pydantic import ValidationError

from services.auditor.store import Signed
from shared.broker import decode
from shared.events import canonical_json
from shared.identity import SIGNATURE_HEADER, SIGNER_HEADER, TrustedSigners, header


def intake(trusted: TrustedSigners, body: bytes, subject: str, headers: Any) -> tuple[Signed | None, str | None]:
    """The event in a message, checked as the log needs it: a catalog event on its own subject,
    signed by a service that may produce it, in canonical form, storable. Else why not."""
    try:
        event = decode(body, subject)
        payload = json.loads(body)
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        return None, str(exc)
    signer, signature = header(headers, SIGNER_HEADER), header(headers, SIGNATURE_HEADER)
    verdict = trusted.check(body, signer, signature, event.type, event.data)
    if not verdict.ok:
        return None, f"{verdict.problem} (claimed actor {event.actor!r})"
    canonical = canonical_json(payload)
    if canonical.encode() != body:
        return None, "not in canonical form (sorted keys, no spaces): the signature would not verify from the log"
    # Canonical JSON writes every character as itself except the controls, which it escapes; so
    # a NUL or a lone surrogate (what jsonb cannot hold) can only come as a backslash-u escape, and a
    # body without one needs no walk through its values.
    if b"\\u" in body and (problem := unstorable(payload)) is not None:
        return None, problem
    return Signed(event, payload, canonical, verdict.service, signer, signature), None


def unstorable(value: Any, where: str = "event") -> str | None:
    """Why PostgreSQL's jsonb (or UTF-8) cannot hold `value`, or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} holds a NUL character, which the log cannot store"
        if _SURROGATE.search(value):
            return f"{where} holds a lone surrogate, which is not valid Unicode"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if (problem := unstorable(key, where) or unstorable(item, f"{where}.{key}")) is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := unstorable(item, f"{where}[{index}]")) is not None:
                return problem
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
# SQLSTATE classes that mean "this data cannot be stored": data exceptions (an untranslatable
# character, a value out of range), integrity violations, program limits (too large). Every other
# database error (connection, shutdown, resources, deadlocks, a privilege missing after a bad
# migration) is retried: the log waits, and readiness says it is behind, rather than dropping events.
_DATA_CLASSES = ("22", "23", "54")
_AWAY = (OSError, TimeoutError, ConnectionError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def refused_as_data(exc: BaseException) -> bool:
    """True when writing failed because of what the events hold (a value PostgreSQL refuses, a
    fold that cannot take them), not because the database is away: retrying would fail forever."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UnicodeError):
            return True
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state[:2] in _DATA_CLASSES
        if isinstance(current, _AWAY) or getattr(current, "connection_invalidated", False):
            return False
        if type(current).__module__.startswith("asyncpg") and "Connection" in type(current).__name__:
            return False
        current = getattr(current, "orig", None) or current.__cause__
    return not isinstance(exc, _AWAY) and type(exc).__module__.split(".")[0] not in ("sqlalchemy", "asyncpg")
