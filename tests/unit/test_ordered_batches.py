"""The auditor's consumer gathers a burst into one batch, and waits for it no longer than its
linger: a lone event is recorded `linger` after it arrived, not linger plus a long fetch timeout
(200 ms it was: every deployment's last status waited it).

The subscription here answers as JetStream's pull does (nats-py's fetch): what is there, or
nothing once the timeout it was given has passed."""

from __future__ import annotations

import asyncio

import nats.errors

from services.runtime.ordered import OrderedConsumer
from shared.settings import Settings


class Msg:
    def __init__(self, n: int) -> None:
        self.n, self.acked = n, False

    async def ack(self) -> None:
        self.acked = True


class Pull:
    """Each fetch takes the next answer: a list of messages, or None (nothing came in time)."""

    def __init__(self, *answers: list[Msg] | None) -> None:
        self.answers, self.waits = list(answers), []

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        self.waits.append(timeout)
        answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            raise nats.errors.TimeoutError
        return answer[:batch]


def consume(pull: Pull, *, batch: int = 256, linger_ms: float = 20.0) -> list[list[int]]:
    batches: list[list[int]] = []

    async def handle(msgs: list[Msg]) -> None:
        batches.append([m.n for m in msgs])
        consumer.stopping = True

    consumer = OrderedConsumer(None, Settings(), "t", handle, batch=batch, linger_ms=linger_ms)  # type: ignore[arg-type]
    consumer.sub = pull  # type: ignore[assignment]
    asyncio.run(consumer._loop())
    return batches


def test_a_lone_event_waits_the_linger_and_no_more() -> None:
    pull = Pull([Msg(1)], None)
    assert consume(pull, linger_ms=20) == [[1]]
    _, *rest = pull.waits
    assert len(rest) == 1 and rest[0] <= 0.005  # after the linger, a pull for what is already there


def test_the_rest_of_a_burst_joins_the_first_event_in_one_batch() -> None:
    msgs = [Msg(n) for n in range(1, 6)]
    pull = Pull(msgs[:1], msgs[1:])
    assert consume(pull) == [[1, 2, 3, 4, 5]]
    assert all(m.acked for m in msgs)


def test_a_full_batch_is_handled_without_lingering() -> None:
    pull = Pull([Msg(1), Msg(2)])
    assert consume(pull, batch=2) == [[1, 2]]
    assert len(pull.waits) == 1


def test_no_linger_means_no_second_pull() -> None:
    pull = Pull([Msg(1)], [Msg(2)])
    assert consume(pull, linger_ms=0) == [[1]]
    assert len(pull.waits) == 1
