"""Server-Sent Events responses that stay cheap with a thousand streams open.

Every chunk a streaming response sends normally passes through each ASGI middleware's `send`
wrapper (errors, exceptions, CORS, body limit, tracing) on its way to the server, though none of
them does anything with a body chunk; with the live-event feed fanning each event out to every open
stream, those wrappers were most of the gateway's work (bench/fanout.py). `ServerSend`, the
outermost middleware, leaves the server's own `send` in the scope; `EventStream` sends its start
and its end through the middlewares as any response does, and the chunks in between straight to
the server.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SCOPE_KEY = "agentops.server_send"


class ServerSend:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SCOPE_KEY] = send
        await self.app(scope, receive, send)


class EventStream(StreamingResponse):
    """Server-Sent Events (documented as text/event-stream, not JSON)."""

    media_type = "text/event-stream"
    server_send: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.server_send = scope.get(SCOPE_KEY)
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        direct = self.server_send or send
        async for chunk in self.body_iterator:
            body = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
            await direct({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
