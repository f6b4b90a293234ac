"""A publish span: its context is what the message carries (so the consumer's span hangs under
it), and a publish that fails is recorded as failed, with the error, rather than as a success."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime.telemetry import nats_middleware


def middleware() -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = nats_middleware(provider)
    return traced.__new__(traced), exporter


async def test_the_message_carries_the_publish_spans_context() -> None:
    mw, exporter = middleware()
    cmd = SimpleNamespace(destination="agentops.plan.proposed", headers={"Nats-Msg-Id": "m-1"})
    sent: list[dict[str, str]] = []

    async def publish(cmd: Any) -> str:
        sent.append(dict(cmd.headers))
        return "acked"

    assert await mw.publish_scope(publish, cmd) == "acked"
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER and span.name == "agentops.plan.proposed publish"
    assert span.attributes is not None and span.attributes["messaging.message.id"] == "m-1"
    trace_id, span_id = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
    _, carried_trace, carried_span, flags = sent[0]["traceparent"].split("-")
    assert (carried_trace, carried_span) == (trace_id, span_id)
    assert int(flags, 16) & 1  # sampled: the consumer records its span too
    assert span.status.status_code is not StatusCode.ERROR


async def test_a_failed_publish_is_a_failed_span_and_the_error_goes_on() -> None:
    mw, exporter = middleware()
    cmd = SimpleNamespace(destination="agentops.plan.proposed", headers={})

    async def publish(cmd: Any) -> None:
        raise TimeoutError("no PubAck")

    with pytest.raises(TimeoutError):
        await mw.publish_scope(publish, cmd)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.end_time is not None
