"""One command is one trace: the gateway's request, then each service's consume and publish spans
(the context rides in the NATS headers), down to the auditor's write, all naming the plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind

from shared.broker import ALL_EVENTS
from tests.fakes import FakeHttp, serve
from tests.infra import connect, for_service, found, service_app
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration


@contextmanager
def the_global_provider(provider: TracerProvider) -> Iterator[None]:
    """`provider` as the process's global tracer provider too, as `agentops serve` sets it (and
    by which FastAPI's own telemetry would turn itself on); the one before it afterwards."""
    from opentelemetry.util._once import Once

    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = None, Once()
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


async def test_a_staging_command_is_one_trace_through_every_service(nats_url: str, database_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = system_settings(nats_url, database_url)
    with the_global_provider(provider):
        async with running(settings, tracer_provider=provider) as client:
            system = System(client, settings)
            plan_id = (await system.command("deploy llama-3.1 8B for traced-bot", env="staging"))["plan_id"]
            await system.wait_status(plan_id, "deployed")
            await system.plan(plan_id)  # a path with an id in it: named by its route template
            await system.settled()
    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.kind is SpanKind.SERVER and s.attributes and "agentops.plan_id" in s.attributes]
    assert request.name == "POST /api/agent/command"
    assert request.attributes and request.attributes["http.route"] == "/api/agent/command"
    served = {s.name for s in spans if s.kind is SpanKind.SERVER}
    assert "GET /api/deployments/{plan_id}" in served, served
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    # one server span for the request: no second one (FastAPI's own) around or inside it
    assert [s.name for s in in_trace if s.kind is SpanKind.SERVER] == ["POST /api/agent/command"]
    services = {s.attributes.get("agentops.service") for s in in_trace if s.attributes}
    assert services >= {"gateway", "planner", "guardian", "executor", "auditor"}, services
    labelled = [s for s in in_trace if s.attributes and "agentops.plan_id" in s.attributes]
    assert {s.attributes["agentops.plan_id"] for s in labelled} == {plan_id}  # type: ignore[index]
    # every consumer's span hangs under the one that published what it consumed: no orphans
    ids = {s.context.span_id for s in in_trace}
    assert all(s.parent is None or s.parent.span_id in ids for s in in_trace if s is not request)
    assert request.parent is None or request.parent.span_id not in ids  # the request starts it
    # each consume span is named for the subject it read and carries the messaging attributes
    consumed = [s for s in in_trace if s.kind is SpanKind.CONSUMER and s.name.endswith(" process")]
    assert {"agentops.intent.received", "agentops.plan.proposed"} <= {s.name.split()[0] for s in consumed}
    for span in consumed:
        assert span.attributes and span.attributes["messaging.system"] == "nats"
        assert span.attributes["messaging.destination.name"] == span.name.split()[0]
    # a publish is a child of the request or consume span it was made in, which outlives it
    by_id = {s.context.span_id: s for s in in_trace}
    publishes = [s for s in in_trace if s.kind is SpanKind.PRODUCER]
    assert publishes and not [s for s in publishes if s.name.endswith(" create")]
    for publish in publishes:
        assert publish.parent is not None, publish.name
        parent = by_id[publish.parent.span_id]
        assert parent.kind in (SpanKind.SERVER, SpanKind.CONSUMER), (publish.name, parent.name)
        assert parent.end_time is not None and publish.end_time is not None
        assert parent.end_time >= publish.end_time, (publish.name, parent.name)


async def test_a_command_the_sampler_leaves_out_carries_its_context_and_records_nothing(
    nats_url: str, database_url: str
) -> None:
    """Head sampling decides once, at the gateway: a command left out makes no span in any
    service, and every event it causes carries the same unsampled trace context, so no service
    starts a trace of its own half-way through it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = system_settings(nats_url, database_url)
    seen: list[tuple[str, dict[str, str]]] = []
    nc = await connect(nats_url)

    async def keep(msg: Any) -> None:
        seen.append((msg.subject, {**(msg.headers or {}), "_body": msg.data.decode(errors="replace")}))

    sub = await nc.subscribe(ALL_EVENTS, cb=keep)
    try:
        async with running(settings, tracer_provider=provider) as client:
            system = System(client, settings)
            plan_id = (await system.command("deploy llama-3.1 8B for unsampled-bot", env="staging"))["plan_id"]
            await system.wait_status(plan_id, "deployed")
            await system.settled()
    finally:
        await sub.unsubscribe()
        await nc.close()
    mine = [(subject, headers) for subject, headers in seen if plan_id in headers.get("_body", "")]
    subjects = {subject for subject, _ in mine}
    assert {"agentops.intent.received", "agentops.plan.proposed", "agentops.deployment.requested"} <= subjects
    parents = {headers.get("traceparent", "") for _, headers in mine}
    assert all(len(p) == 55 and not int(p[53:], 16) & 1 for p in parents), parents  # carried, not sampled
    assert len({p.split("-")[1] for p in parents}) == 1  # one trace id from the request on
    assert len({p.split("-")[2] for p in parents}) == 1  # and no span of its own made on the way
    assert [s.name for s in exporter.get_finished_spans() if s.attributes and "agentops.plan_id" in s.attributes] == []


async def test_the_notifier_traces_what_it_delivers_and_nothing_it_ignores(nats_url: str, database_url: str) -> None:
    """A consume span per event of a type a target asked for (under the command's trace); none for
    the events no target wants, which it only passes over."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with serve(FakeHttp(routes={"POST /hooks": lambda body: (200, {})})) as hooks:
        target = {"name": "ops", "url": f"{hooks.url}/hooks", "secret": "s", "events": ["deployment.status:deployed"]}
        settings = system_settings(nats_url, database_url, webhooks=json.dumps([target]))
        notifier = service_app("notifier", for_service(settings, "notifier"), tracer_provider=provider)
        async with running(settings, tracer_provider=provider) as client, notifier:
            system = System(client, settings)
            plan_id = (await system.command("deploy llama-3.1 8B for notified-bot", env="staging"))["plan_id"]
            await system.wait_status(plan_id, "deployed")
            await found(lambda: [r for r in hooks.requests if r.path == "/hooks"], what="the webhook delivery")
            await system.settled()
    spans = exporter.get_finished_spans()
    mine = [s for s in spans if s.attributes and s.attributes.get("agentops.service") == "notifier"]
    consumed = {s.name for s in mine if s.kind is SpanKind.CONSUMER}
    # deploying and deployed are both deployment.status: the type is traced, the rest is not
    assert consumed == {"agentops.deployment.status process"}, consumed
    [request] = [s for s in spans if s.kind is SpanKind.SERVER and s.attributes and "agentops.plan_id" in s.attributes]
    assert {s.context.trace_id for s in mine} == {request.context.trace_id}
