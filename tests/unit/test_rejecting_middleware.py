"""Only the message itself can be undecodable: a JSON error inside a handler is retried.

Found under kill -9 load: a broker's empty publish acknowledgement raised JSONDecodeError inside
the guardian's handler, the middleware took it for a bad message and acknowledged it, and an
approval was lost. The decision now rests on decoding the body apart from the handler.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from faststream.exceptions import NackMessage

from shared.broker import _rejecting_middleware
from shared.events import IntentReceived, IntentReceivedData


class Broker:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, str]] = []

    async def publish(self, body: bytes, subject: str, **_: Any) -> None:
        self.published.append((body, subject))


def middleware(broker: Broker) -> Any:
    cls = _rejecting_middleware("guardian", "AGENTOPS")
    return cls(None, context=SimpleNamespace(get=lambda name: broker))


def message(body: bytes, subject: str) -> Any:
    return SimpleNamespace(body=body, raw_message=SimpleNamespace(subject=subject))


EVENT = IntentReceived(plan_id="p1", actor="alice", data=IntentReceivedData(command="deploy x", user_id="alice"))


async def test_a_json_error_inside_the_handler_is_retried_not_rejected() -> None:
    broker = Broker()

    async def handler(_msg: Any) -> None:
        json.loads(b"")  # what nats-py does with an empty publish acknowledgement

    with pytest.raises(NackMessage):
        await middleware(broker).consume_scope(handler, message(EVENT.model_dump_json().encode(), EVENT.subject))
    assert broker.published == []


async def test_a_body_that_is_not_an_event_is_rejected_once_and_the_handler_never_runs() -> None:
    broker = Broker()
    ran = []

    async def handler(_msg: Any) -> None:
        ran.append(True)

    assert await middleware(broker).consume_scope(handler, message(b"{not json", "agentops.intent.received")) is None
    assert ran == []
    ((body, subject),) = broker.published
    assert subject == "agentops.message.rejected" and json.loads(body)["data"]["service"] == "guardian"


async def test_an_event_on_another_type_s_subject_is_rejected() -> None:
    broker = Broker()

    async def handler(_msg: Any) -> None:
        raise AssertionError("must not run")

    await middleware(broker).consume_scope(handler, message(EVENT.model_dump_json().encode(), "agentops.plan.proposed"))
    ((body, _),) = broker.published
    assert "only its own type" in json.loads(body)["data"]["error"]


async def test_a_good_event_reaches_the_handler() -> None:
    broker = Broker()
    seen = []

    async def handler(msg: Any) -> str:
        seen.append(msg)
        return "done"

    assert (
        await middleware(broker).consume_scope(handler, message(EVENT.model_dump_json().encode(), EVENT.subject))
        == "done"
    )
    assert len(seen) == 1 and broker.published == []
