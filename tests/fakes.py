"""A small local HTTP server for the wire formats of things that cannot run here (LLM and NIM APIs,
SageMaker runtime). Each route is a function of the decoded JSON request; every request is kept."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[dict[str, Any]], tuple[int, Any]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


@dataclass
class FakeHttp:
    routes: dict[str, Handler]  # "POST /v1/chat/completions" -> handler; paths may be regexes
    delay: float = 0.0
    requests: list[Seen] = field(default_factory=list)
    url: str = ""

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        body = json.loads(raw) if raw else None
        self.requests.append(Seen(method, path, headers, body, raw))
        if self.delay:
            time.sleep(self.delay)
        for route, handler in self.routes.items():
            verb, pattern = route.split(" ", 1)
            if verb == method and re.fullmatch(pattern, path):
                status, answer = handler(body)
                return status, json.dumps(answer).encode()
        return 404, b'{"error": "no such route"}'


@contextmanager
def serve(fake: FakeHttp) -> Iterator[FakeHttp]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, out = fake.handle("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
