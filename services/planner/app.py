"""Planner: turns `intent.received` into `plan.proposed` or `plan.failed`."""

from __future__ import annotations

from faststream import FastStream

from services.planner.llm import build_llm_planner
from services.planner.planning import SERVICE, plan_command
from services.planner.retrieval import Retriever, build_retriever
from shared import catalog
from shared.broker import Publisher, build_broker, durable, load_identity, wait_for_stream, watch_consumers
from shared.events import IntentReceived
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


def create_app(settings: Settings) -> FastStream:
    identity = load_identity(settings, SERVICE)
    broker = build_broker(settings, identity)
    publish = Publisher(broker, settings, ["plan.proposed", "plan.failed"], identity.signer)
    models, instances = catalog.models(), catalog.instances()  # validated at start, not per message
    cite = CachedCitations(build_retriever(settings), settings.retrieval_top_k)
    llm = build_llm_planner(settings, models, instances, cite)

    @durable(broker, settings, "intent.received", SERVICE, max_workers=4)
    async def on_intent(event: IntentReceived) -> None:
        if llm is not None:
            await publish(await llm.plan(event))
        else:
            await publish(await plan_command(event, models, instances, settings, cite))

    app = FastStream(broker)
    watch_consumers(app, broker, settings, SERVICE)

    @app.on_startup
    async def _stream() -> None:
        await wait_for_stream(broker, settings)

    return app
