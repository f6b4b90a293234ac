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

from services.runtime.messaging import Messaging
from shared.broker import load_identity
from shared.events import IntentReceived, IntentReceivedData
from shared.identity import SIGNATURE_HEADER, SIGNER_HEADER
from shared.settings import Settings
from tests.infra import SIGNERS


class Broker:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, str]] = []

    async def publish(self, body: bytes, subject: str, **_: Any) -> None:
        self.published.append((body, subject))


def middleware(broker: Broker) -> Any:
    runtime = Messaging(Settings(), load_identity(Settings(), "guardian"))
    runtime.broker = broker  # type: ignore[assignment]  # where rejections are published
    return runtime._middleware()(None, context=SimpleNamespace())


def message(body: bytes, subject: str, signer: str | None = "gateway") -> Any:
    """A message as JetStream delivers it (stream position 7), signed by `signer`."""
    headers = SIGNERS[signer].sign(body) if signer else {}
    position = SimpleNamespace(sequence=SimpleNamespace(stream=7))
    return SimpleNamespace(body=body, headers=headers, raw_message=SimpleNamespace(subject=subject, metadata=position))


EVENT = IntentReceived(plan_id="p1", actor="alice", data=IntentReceivedData(command="deploy x", user_id="alice"))
BODY = EVENT.canonical_json().encode()


async def test_a_json_error_inside_the_handler_is_retried_not_rejected() -> None:
    broker = Broker()

    async def handler(_msg: Any) -> None:
        json.loads(b"")  # what nats-py does with an empty publish acknowledgement

    with pytest.raises(NackMessage):
        await middleware(broker).consume_scope(handler, message(BODY, EVENT.subject))
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

    await middleware(broker).consume_scope(handler, message(BODY, "agentops.plan.proposed"))
    ((body, _),) = broker.published
    assert "only its own type" in json.loads(body)["data"]["error"]


async def test_a_good_event_reaches_the_handler() -> None:
    broker = Broker()
    seen = []

    async def handler(msg: Any) -> str:
        seen.append(msg)
        return "done"

    assert await middleware(broker).consume_scope(handler, message(BODY, EVENT.subject)) == "done"
    assert len(seen) == 1 and broker.published == []


@pytest.mark.parametrize(
    ("body", "signer", "why"),
    [
        (BODY, None, "unsigned"),
        (BODY, "planner", "produced by gateway, not planner"),
        (BODY.replace(b"deploy x", b"deploy y"), "gateway", "does not match the content"),
    ],
    ids=["unsigned", "signed-by-a-service-that-does-not-own-the-type", "altered-after-signing"],
)
async def test_an_event_that_is_not_authentic_is_recorded_and_never_handled(body: bytes, signer: Any, why: str) -> None:
    broker = Broker()

    async def handler(_msg: Any) -> None:
        raise AssertionError("must not run")

    msg = message(BODY, EVENT.subject, signer)
    msg.body = body  # altered after it was signed
    assert await middleware(broker).consume_scope(handler, msg) is None
    ((raw, subject),) = broker.published
    data = json.loads(raw)["data"]
    assert subject == "agentops.message.rejected" and why in data["error"]
    assert data["claimed_actor"] == "alice" and data["service"] == "guardian"


async def test_a_rejection_is_signed_by_the_service_that_made_it() -> None:
    broker = Broker()
    published: list[Any] = []

    async def publish(body: bytes, subject: str, headers: dict[str, str], **_: Any) -> None:
        published.append(headers)

    broker.publish = publish  # type: ignore[method-assign]

    async def handler(_msg: Any) -> None:
        raise AssertionError("must not run")

    await middleware(broker).consume_scope(handler, message(BODY, EVENT.subject, None))
    assert published[0][SIGNER_HEADER] == SIGNERS["guardian"].public_key and published[0][SIGNATURE_HEADER]
