"""The notifier as a class with ports: the targets, a delivery function (HTTP) and a publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.notifier.webhooks import Target
from shared.bus import Publish
from shared.events import Event, NotificationFailed, NotificationFailedData

SERVICE = "notifier"
# (target, event) -> (attempts made, the last error or None)
Deliver = Callable[[Target, Event], Awaitable[tuple[int, str | None]]]


class Notifier:
    def __init__(self, targets: list[Target], deliver: Deliver, publish: Publish) -> None:
        self.targets, self.deliver, self.publish = targets, deliver, publish
        # every event type some target asked for (some statuses of it, or all)
        self.types = frozenset(t for target in targets for t in target.types())

    def acts_on(self, event_type: str) -> bool:
        """Whether some target may want events of this type (what is worth a span)."""
        return event_type in self.types

    async def on_event(self, event: Event) -> None:
        """Every target that wants `event` gets it; one that never answers is recorded as
        `notification.failed` (replays included: a replay is how a missed one is sent again)."""
        wanted = [t for t in self.targets if t.wants(event)]
        await asyncio.gather(*(self._notify(t, event) for t in wanted))

    async def _notify(self, target: Target, event: Event) -> None:
        tries, error = await self.deliver(target, event)
        if error is not None:
            data = NotificationFailedData(
                target=target.name, event_id=event.id, event_type=event.type, attempts=tries, error=error
            )
            await self.publish(event.caused(NotificationFailed, f"notify:{target.name}", SERVICE, data))
