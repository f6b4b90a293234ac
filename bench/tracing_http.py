"""What the gateway's server span costs a request, three ways, in one run: OpenTelemetry's ASGI
middleware (opentelemetry-instrumentation-asgi, configured as the gateway used it: route names
looked up once per path, no per-chunk send/receive spans), FastAPI's own telemetry (FastAPI 0.16x:
server span only, and with its per-dependency/endpoint/serialization spans) and ours
(services/runtime/telemetry.py `ServerSpans`), for a request the sampler records and one it
leaves out, over a FastAPI app with the command route's shape. In-process ASGI calls (no
sockets), so the middleware's own CPU is what is timed; spans go to an exporter that keeps
nothing. Rounds interleave the variants; medians of each round's median.

    python -m bench.tracing_http                 # 5 rounds x 3,000 requests per variant
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

from bench.rounds import interleaved, report
from services.runtime.telemetry import RouteNames, ServerSpans

BODY = b'{"command": "deploy llama 3.1 8b for bench-app", "env": "staging"}'
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/api/agent/command",
    "raw_path": b"/api/agent/command",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"python-httpx/0.28.1"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
        (b"authorization", b"Bearer ak_0123456789abcdef0123456789abcdef"),
        (b"content-length", str(len(BODY)).encode()),
        (b"content-type", b"application/json"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


class Nowhere(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def api(telemetry: dict[str, Any] | None = None) -> FastAPI:
    app = FastAPI(telemetry=telemetry or {"tracing": False, "metrics": False, "logs": False})  # type: ignore[typeddict-item]

    @app.post("/api/agent/command", status_code=202)
    async def command(body: dict[str, str]) -> dict[str, str]:
        return {"status": "accepted"}

    return app


def variant(kind: str, sampled: bool) -> Any:
    if kind == "none":
        return api()
    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ParentBased(ALWAYS_OFF))
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    if kind.startswith("fastapi"):
        return api(
            {"tracer_provider": provider, "metrics": False, "logs": False, "operation_spans": kind.endswith("+ops")}
        )
    app = api()
    if kind == "opentelemetry-asgi":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(
            app,
            excluded_urls="healthz,readyz,metrics",
            exclude_spans=["receive", "send"],
            default_span_details=RouteNames(app).span_details,
            tracer_provider=provider,
        )
    return ServerSpans(app, provider, RouteNames(app))


async def per_request_us(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    t0 = time.perf_counter()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)
    return (time.perf_counter() - t0) / n * 1e6


async def main(rounds: int, n: int) -> None:
    variants = {
        "none": variant("none", True),
        "opentelemetry-asgi sampled": variant("opentelemetry-asgi", True),
        "ours sampled": variant("ours", True),
        "fastapi sampled": variant("fastapi", True),
        "fastapi+ops sampled": variant("fastapi+ops", True),
        "opentelemetry-asgi unsampled": variant("opentelemetry-asgi", False),
        "ours unsampled": variant("ours", False),
        "fastapi unsampled": variant("fastapi", False),
    }
    for app in variants.values():
        await per_request_us(app, 200)  # warm-up: first requests build FastAPI's caches
    medians = await interleaved(variants, rounds, lambda name: per_request_us(variants[name], n))
    print(f"{os.cpu_count()} cores; {rounds} rounds x {n} requests; in-process ASGI, median us per request")
    report(medians, "none", "us", 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
