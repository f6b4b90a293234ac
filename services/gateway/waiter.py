"""Waiting for a plan's first decisive event, so POST /api/agent/command can answer with the outcome."""

from __future__ import annotations

import asyncio

from shared.events import Event

# The first of these for a plan settles the command's response.
DECISIVE = ("plan.failed", "plan.rejected", "approval.requested", "deployment.requested")


class PlanWaiter:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Event]] = {}

    def expect(self, plan_id: str) -> asyncio.Future[Event]:
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiting[plan_id] = future
        return future

    def forget(self, plan_id: str) -> None:
        self._waiting.pop(plan_id, None)

    def offer(self, event: Event) -> None:
        future = self._waiting.pop(event.plan_id, None)
        if future is not None and not future.done():
            future.set_result(event)

    async def wait(self, future: asyncio.Future[Event], plan_id: str, timeout: float) -> Event | None:
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self.forget(plan_id)
