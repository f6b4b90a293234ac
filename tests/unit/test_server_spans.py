"""The gateway's server span: one per request, named by route, continuing the caller's trace,
saying what an operator needs (status, errors) and nothing a user would not want stored (the
query string, where the seed's SSE clients put their API key)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime.telemetry import instrument_api

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def traced_app(provider: TracerProvider) -> FastAPI:
    app = FastAPI()

    @app.get("/api/events")
    async def events(api_key: str = "") -> dict[str, str]:
        return {"span_id": format(trace.get_current_span().get_span_context().span_id, "016x")}

    @app.get("/api/deployments/{plan_id}")
    async def plan(plan_id: str) -> dict[str, str]:
        if plan_id == "missing":
            raise HTTPException(404, "no such plan")
        if plan_id == "broken":
            raise HTTPException(503, "database away")
        if plan_id == "bug":
            raise RuntimeError("a bug")
        return {"plan_id": plan_id}

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    instrument_api(app, provider)
    return app


def recording(sampler: object = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.1.2.3", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test:8000")


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def test_a_request_is_a_server_span_named_by_its_route_with_the_stable_http_attributes() -> None:
    provider, exporter = recording()
    async with client(traced_app(provider)) as http:
        answer = await http.get("/api/deployments/p-1", headers={"User-Agent": "ops-cli"})
    assert answer.status_code == 200
    span = only(exporter)
    assert (span.name, span.kind, span.status.status_code) == (
        "GET /api/deployments/{plan_id}",
        SpanKind.SERVER,
        StatusCode.UNSET,
    )
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/api/deployments/{plan_id}",
        "url.path": "/api/deployments/p-1",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "server.address": "gateway.test",
        "server.port": 8000,
        "client.address": "10.1.2.3",
        "http.response.status_code": 200,
    }


async def test_an_api_key_in_the_query_string_is_never_recorded() -> None:
    provider, exporter = recording()
    async with client(traced_app(provider)) as http:
        answer = await http.get("/api/events", params={"api_key": "ak_live_do_not_store", "after": "0"})
    assert answer.status_code == 200
    span = only(exporter)
    assert span.attributes and span.attributes["url.path"] == "/api/events"
    recorded = " ".join(f"{k}={v}" for k, v in (span.attributes or {}).items())
    assert "ak_live_do_not_store" not in recorded and "api_key" not in recorded, recorded


async def test_the_callers_trace_context_is_continued_and_is_current_in_the_handler() -> None:
    provider, exporter = recording()
    async with client(traced_app(provider)) as http:
        answer = await http.get("/api/events", headers={"traceparent": CALLER})
    span = only(exporter)
    assert format(span.context.trace_id, "032x") == CALLER.split("-")[1]
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER.split("-")[2]
    # what the handler (and every log line it writes) sees as current is this span
    assert answer.json()["span_id"] == format(span.context.span_id, "016x")


async def test_server_errors_and_exceptions_are_error_spans_and_client_errors_are_not() -> None:
    provider, exporter = recording()
    async with client(traced_app(provider)) as http:
        assert (await http.get("/api/deployments/missing")).status_code == 404
        assert (await http.get("/api/deployments/broken")).status_code == 503
        assert (await http.get("/api/deployments/bug")).status_code == 500
    missing, broken, bug = exporter.get_finished_spans()
    assert missing.status.status_code is StatusCode.UNSET
    assert missing.attributes and missing.attributes["http.response.status_code"] == 404
    assert broken.status.status_code is StatusCode.ERROR
    assert broken.attributes and broken.attributes["error.type"] == "503"
    assert bug.status.status_code is StatusCode.ERROR
    assert bug.attributes and bug.attributes["error.type"] == "RuntimeError"  # what failed, not just "500"
    assert bug.attributes["http.response.status_code"] == 500
    assert [e.name for e in bug.events] == ["exception"]


async def test_probes_make_no_span_and_an_unknown_method_is_not_a_span_name() -> None:
    provider, exporter = recording()
    async with client(traced_app(provider)) as http:
        assert (await http.get("/healthz")).status_code == 200
        await http.request("BREW", "/api/deployments/p-1")
    span = only(exporter)
    assert span.name == "HTTP"
    assert span.attributes and span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "BREW"


@pytest.mark.parametrize("flags", ["00", None])
async def test_a_request_the_sampler_leaves_out_records_nothing(flags: str | None) -> None:
    provider, exporter = recording(ParentBased(ALWAYS_OFF))
    headers = {"traceparent": CALLER[:-2] + flags} if flags else {}
    async with client(traced_app(provider)) as http:
        assert (await http.get("/api/deployments/p-1", headers=headers)).status_code == 200
    assert exporter.get_finished_spans() == ()
