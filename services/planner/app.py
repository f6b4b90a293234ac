"""Planner: turns `intent.received` into `plan.proposed` or `plan.failed`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from faststream import FastStream
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.planner.llm import ChatClient, build_llm_planner
from services.planner.planning import SERVICE, plan_command
from services.planner.retrieval import Retriever, build_retriever
from services.planner.service import Planner
from shared import catalog
from shared.bus import Bus
from shared.events import Event, IntentReceived
from shared.hub import Hub
from shared.models import Evidence
from shared.settings import Settings

# spans of the planner's own calls; the global provider is the one OTEL_* configured (no-op when off)
tracer = trace.get_tracer("agentops.planner")


class CachedCitations:
    """The rules planner asks a few templated questions; the knowledge does not change at run time.
    `observe` gets each retrieval's seconds (cache misses: hits cost nothing)."""

    def __init__(
        self, retriever: Retriever, k: int, size: int = 512, observe: Callable[[float], None] = lambda seconds: None
    ) -> None:
        self.retriever, self.k, self.size, self.observe = retriever, k, size, observe
        self.cache: dict[str, list[Evidence]] = {}

    async def __call__(self, query: str) -> list[Evidence]:
        if (hit := self.cache.get(query)) is not None:
            return hit
        started = time.perf_counter()
        with tracer.start_as_current_span("retrieve", kind=SpanKind.CLIENT) as span:
            span.set_attribute("agentops.retriever", type(self.retriever).__name__)
            found = await self.retriever.search(query, self.k)
        self.observe(time.perf_counter() - started)
        if len(self.cache) < self.size:
            self.cache[query] = found
        return found


class TimedChat:
    """An LLM client that reports each call's seconds and outcome (ok, error, timeout) and, when
    tracing is on, makes it a span (the HTTP or SageMaker call inside is a child of it)."""

    def __init__(self, client: ChatClient, observe: Callable[[str, str, float], None]) -> None:
        self.client, self.observe, self.name = client, observe, client.name

    async def complete(self, messages: list[dict[str, str]]) -> str:
        started, outcome = time.perf_counter(), "error"
        try:
            with tracer.start_as_current_span("llm complete", kind=SpanKind.CLIENT) as span:
                span.set_attribute("agentops.llm", self.name)
                text = await self.client.complete(messages)
            outcome = "ok"
            return text
        except asyncio.CancelledError:  # the planner's timeout (LLM_TIMEOUT_SECONDS)
            outcome = "timeout"
            raise
        finally:
            self.observe(self.name.split(":")[0], outcome, time.perf_counter() - started)


def create_app(settings: Settings, bus: Bus) -> FastStream:
    assert bus.name == SERVICE
    models, instances = catalog.models(), catalog.instances()  # validated at start, not per message
    retriever = build_retriever(settings)
    retrieval = bus.metrics.histogram("retrieval_seconds", "time to retrieve policy passages", ("retriever",))
    retrieved = retrieval.labels(type(retriever).__name__)
    cite = CachedCitations(retriever, settings.retrieval_top_k, observe=retrieved.observe)
    llm_seconds = bus.metrics.histogram(
        "llm_seconds", "time of each LLM call, by backend and outcome (ok, error, timeout)", ("backend", "outcome")
    )

    def timed(client: ChatClient) -> ChatClient:
        return TimedChat(client, lambda backend, outcome, took: llm_seconds.labels(backend, outcome).observe(took))

    hub = Hub(models, settings.hf_endpoint, timeout=settings.hub_timeout_seconds)
    llm = build_llm_planner(settings, models, instances, cite, wrap=timed, hub=hub)

    async def by_rules(event: IntentReceived) -> Event:
        return await plan_command(event, models, instances, settings, cite, hub)

    seconds = bus.metrics.histogram("planning_seconds", "time to plan a command (retrieval, LLM)", ("planner",))
    fallbacks = bus.metrics.counter("llm_fallbacks", "plans the rules made because the LLM failed or erred")

    def observe(out: Event, took: float) -> None:
        planner_name = getattr(out.data, "planner", "failed")
        seconds.labels(planner_name.split(":")[0].split(" ")[0]).observe(took)
        if planner_name == "rules (llm fallback)":
            fallbacks.inc()

    publish = bus.publisher(["plan.proposed", "plan.failed"])
    planner = Planner(llm.plan if llm is not None else by_rules, publish, observe)

    @bus.durable("intent.received", max_workers=4)
    async def on_intent(event: IntentReceived) -> None:
        await planner.on_intent(event)

    return bus.app()
