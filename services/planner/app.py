"""Planner: turns `intent.received` into `plan.proposed` or `plan.failed`."""

from __future__ import annotations

from faststream import FastStream

from services.planner.llm import build_llm_planner
from services.planner.planning import SERVICE, plan_command
from services.planner.retrieval import Retriever, build_retriever
from services.planner.service import Planner
from shared import catalog
from shared.bus import Bus
from shared.events import Event, IntentReceived
from shared.models import Evidence
from shared.settings import Settings


class CachedCitations:
    """The rules planner asks a few templated questions; the knowledge does not change at run time."""

    def __init__(self, retriever: Retriever, k: int, size: int = 512) -> None:
        self.retriever, self.k, self.size = retriever, k, size
        self.cache: dict[str, list[Evidence]] = {}

    async def __call__(self, query: str) -> list[Evidence]:
        if (hit := self.cache.get(query)) is not None:
            return hit
        found = await self.retriever.search(query, self.k)
        if len(self.cache) < self.size:
            self.cache[query] = found
        return found


def create_app(settings: Settings, bus: Bus) -> FastStream:
    assert bus.name == SERVICE
    models, instances = catalog.models(), catalog.instances()  # validated at start, not per message
    cite = CachedCitations(build_retriever(settings), settings.retrieval_top_k)
    llm = build_llm_planner(settings, models, instances, cite)

    async def by_rules(event: IntentReceived) -> Event:
        return await plan_command(event, models, instances, settings, cite)

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
