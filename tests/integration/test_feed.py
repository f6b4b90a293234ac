"""The gateway's one feed of the log (services/gateway/feed.py), against a real PostgreSQL: woken
by the auditor's commit, fanned out to every subscriber, a subscriber that does not read dropped
without holding up the others, and a subscriber's filters applied in memory."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from services.auditor.store import Signed, append_many
from services.gateway.feed import Entry, Feed
from shared.auditlog import NOTIFY_CHANNEL
from shared.db import make_engine
from shared.events import IntentReceived, IntentReceivedData
from tests.infra import SIGNERS, eventually, login

pytestmark = pytest.mark.integration


def intents(plans: list[str]) -> list[Signed]:
    return [
        Signed.of(
            IntentReceived(
                plan_id=plan, actor="alice", data=IntentReceivedData(command=f"deploy qwen for {plan}", user_id="alice")
            ),
            SIGNERS["gateway"],
        )
        for plan in plans
    ]


def drain(queue: asyncio.Queue[Entry]) -> list[Entry]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_the_auditors_commit_wakes_the_feed_and_every_subscriber_gets_what_it_asked_for(
    database_url: str,
) -> None:
    auditor = make_engine(login(database_url, "auditor"))
    gateway = make_engine(login(database_url, "gateway"))
    await append_many(auditor, intents(["before"]))  # recorded before the feed starts: not fed
    # no poll for a minute: only the NOTIFY at the auditor's commit can wake it within the test
    feed = Feed(gateway, buffer=2, poll_seconds=60.0, min_interval=0.0)
    await feed.start()
    try:
        assert feed.head == 1
        assert await eventually(lambda: feed.listening)
        everything, one_plan, reader_of_nothing = feed.subscribe(), feed.subscribe("p-2"), feed.subscribe()
        only_approvals = feed.subscribe(type_pattern="approval.*")
        read: list[Entry] = []
        for batch in (["p-1", "p-2"], ["p-3"], ["p-4", "p-5"]):
            await append_many(auditor, intents(batch))
            expected = len(read) + len(batch)

            def arrived(expected: int = expected) -> bool:
                read.extend(drain(everything.queue))
                return len(read) >= expected

            assert await eventually(arrived)
        assert [e.seq for e in read] == [2, 3, 4, 5, 6] and [e.plan_id for e in read][:2] == ["p-1", "p-2"]
        assert '"plan_id": "p-1"' in read[0].data and read[0].message(named=True).startswith("id: 2\nevent: ")
        assert feed.head == 6
        assert [e.seq for e in drain(one_plan.queue)] == [3]
        assert drain(only_approvals.queue) == []
        # the subscriber that never read held `buffer` events when more came: dropped, the
        # others were not held up
        assert reader_of_nothing.dropped and reader_of_nothing not in feed.subscribers
        assert [e.seq for e in drain(reader_of_nothing.queue)] == [2, 3]  # what it holds, in order
        assert everything in feed.subscribers and not everything.dropped
    finally:
        await feed.stop()
        await auditor.dispose()
        await gateway.dispose()


async def test_with_nobody_subscribed_the_feed_follows_the_end_of_the_log_and_a_newcomer_misses_nothing(
    database_url: str,
) -> None:
    auditor = make_engine(login(database_url, "auditor"))
    gateway = make_engine(login(database_url, "gateway"))
    feed = Feed(gateway, poll_seconds=60.0, min_interval=0.0)
    await feed.start()
    try:
        assert feed.head == 0
        assert await eventually(lambda: feed.listening)
        await append_many(auditor, intents(["q-1", "q-2"]))
        assert await eventually(lambda: feed.head == 2)
        # anyone who can connect may NOTIFY, with any payload: the head never moves past the log
        async with gateway.connect() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, '999999')"), {"channel": NOTIFY_CHANNEL})
            await conn.commit()
        await append_many(auditor, intents(["q-3"]))
        assert await eventually(lambda: feed.head == 3)
        newcomer = feed.subscribe()
        assert newcomer.after == 3  # it reads the log up to here itself; the feed hands it the rest
        await append_many(auditor, intents(["q-4", "q-5"]))
        got: list[Entry] = []
        assert await eventually(lambda: bool(got.extend(drain(newcomer.queue))) or len(got) >= 2)
        assert [e.seq for e in got] == [4, 5] and [e.plan_id for e in got] == ["q-4", "q-5"]
    finally:
        await feed.stop()
        await auditor.dispose()
        await gateway.dispose()
