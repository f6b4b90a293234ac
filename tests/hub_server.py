"""A local stand-in for the Hugging Face Hub's model API, in its wire format.

`GET /api/models/{org}/{name}` answers the JSON in tests/data/hub/ (the Hub matches repo ids
case-insensitively and answers with the canonical id, and so does this); a repo it does not have
gets what the Hub answers an anonymous caller: 401 with `X-Error-Code: RepoNotFound`. The bodies
there follow the fields and shapes of the public API's answers (id, gated, pipeline_tag, config,
cardData, siblings, safetensors); this machine has no internet, so they were written in that
format rather than captured live. Point `HF_ENDPOINT` (or the settings' `hf_endpoint`) at it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

HUB_DATA = Path(__file__).parent / "data" / "hub"


class HubServer:
    def __init__(self) -> None:
        self.models = {
            json.loads(p.read_text())["id"].lower(): json.loads(p.read_text()) for p in HUB_DATA.glob("*.json")
        }
        self.requests: list[str] = []
        self.url = ""


@contextmanager
def hub_server() -> Iterator[HubServer]:
    hub = HubServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = unquote(urlparse(self.path).path)
            hub.requests.append(path)
            repo = path.removeprefix("/api/models/").split("/revision/")[0].lower()
            body = hub.models.get(repo) if path.startswith("/api/models/") else None
            if body is None:
                payload = json.dumps({"error": "Repository not found"}).encode()
                self.send_response(401)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("X-Error-Message", "Repository not found")
            else:
                payload = json.dumps(body).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
