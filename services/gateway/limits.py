"""Request hygiene: a body size limit enforced before anything is parsed."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.text import safe_text, text_problem


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413, whether or not Content-Length is honest."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        # Read the whole body first (it is small by definition): a route that meets the limit
        # half-way through its body parsing would answer 400, not 413.
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body is over the limit of {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class PlainText:
    """Refuses (400) a path, query parameter or header that is not plain text (shared/text.py):
    NUL, other control characters, lone surrogates, or bytes that are not UTF-8. Before routing,
    so no route ever sees them and nothing is published."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (problem := _request_problem(scope)) is not None:
            await _send_json(send, 400, problem)
            return
        await self.app(scope, receive, send)


def _request_problem(scope: Scope) -> str | None:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    if (problem := _bytes_problem(unquote_to_bytes(raw_path), "the path")) is not None:
        return problem
    # latin-1 maps every byte to one character, so the percent-decoded bytes come back exactly
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True, encoding="latin-1"):
        name = _bytes_problem(key.encode("latin-1"), "a query parameter name")
        if name or (name := _bytes_problem(value.encode("latin-1"), f"query parameter {safe_text(key, 40)!r}")):
            return name
    for key, value in scope.get("headers") or []:
        if (problem := _bytes_problem(value, f"header {key.decode('latin-1')[:40]!r}")) is not None:
            return problem
    return None


def _bytes_problem(raw: bytes, where: str) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{where} is not UTF-8 text"
    problem = text_problem(decoded)
    return f"{where} {problem}" if problem else None


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
