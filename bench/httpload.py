"""A small keep-alive HTTP/1.1 client for load generation.

httpx spends milliseconds of CPU per request under concurrency; at a few hundred requests per
second the load generator, not the system, became the bottleneck (its own event loop stalled for
seconds). This client keeps a fixed pool of persistent connections and does only what a JSON API
needs: a request line, headers, a Content-Length body.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(
        self, method: str, path: str, host: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)


class Pool:
    def __init__(self, host: str, port: int, size: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.size, self.headers = host, port, size, headers
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def __aenter__(self) -> Pool:
        for _ in range(self.size):
            self.idle.put_nowait(Connection(*await asyncio.open_connection(self.host, self.port)))
        return self

    async def __aexit__(self, *_: object) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().writer.close()

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        conn = await self.idle.get()
        headers = {**self.headers, "Content-Type": "application/json"}
        try:
            status, body = await conn.request(
                "POST", path, f"{self.host}:{self.port}", headers, json.dumps(payload).encode()
            )
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            conn.writer.close()
            conn = Connection(*await asyncio.open_connection(self.host, self.port))
            raise
        finally:
            self.idle.put_nowait(conn)
        return status, json.loads(body) if body else None
