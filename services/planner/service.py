"""The planner as a class with ports: how a command becomes a plan (the rules, or an LLM) and a
publisher. One method for the one event it consumes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from shared.bus import Publish
from shared.events import Event, IntentReceived

PlanFn = Callable[[IntentReceived], Awaitable[Event]]


class Planner:
    def __init__(
        self, plan: PlanFn, publish: Publish, observe: Callable[[Event, float], None] = lambda out, seconds: None
    ) -> None:
        self.plan, self.publish, self.observe = plan, publish, observe

    async def on_intent(self, event: IntentReceived) -> None:
        """`plan.proposed`, or `plan.failed` with what to change in the command."""
        started = time.perf_counter()
        out = await self.plan(event)
        self.observe(out, time.perf_counter() - started)
        await self.publish(out)
