"""What concurrency and the consuming loop cost a JetStream hop: a relay that republishes what it
gets, as a FastStream pull subscriber with one pull loop, with FastStream's `max_workers=4` (one
loop feeding a pool of worker tasks through a queue) and with four FastStream pull loops on the
one durable (what `Messaging.durable` did for `max_workers=4` until 2026-11-28), and as four plain
nats-py pull loops (what `services/runtime/messaging.py` `DurableLoop` does now: fetch one, decode,
handle, ack). One message at a time, timed publish -> republished. Rounds interleave the variants;
medians of each round's median.

    python -m bench.workers                 # 4 rounds x 800 messages per variant
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import uuid
from typing import Any

import nats
import nats.errors
from faststream.nats import JStream, NatsBroker, PullSub
from nats.js.api import ConsumerConfig

from bench.rounds import interleaved, report
from bench.tracing_hop import on_a_nats_server, timed_hops


async def hop(url: str, variant: str, n: int) -> float:
    tag = uuid.uuid4().hex[:8]
    stream = JStream(f"hop{tag}", subjects=[f"hop{tag}.>"])
    if variant == "four plain loops":
        return await plain_loops(url, tag, stream, n)
    broker = NatsBroker(url)
    handled = 0

    async def relay(body: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1
        await broker.publish(body, f"hop{tag}.out", stream=stream.name)

    def loop(**extra: Any) -> Any:
        pull = PullSub(batch_size=1, timeout=5.0)
        return broker.subscriber(f"hop{tag}.in", stream=stream, durable=f"d{tag}", pull_sub=pull, **extra)

    loop(max_workers=4 if variant == "faststream max_workers=4" else 1)(relay)
    await broker.start()
    if variant == "four pull loops":
        for _ in range(3):
            more = loop(include_in_schema=False)
            more(relay)
            await more.start()
    try:
        median = await timed_hops(url, tag, n)
    finally:
        await broker.stop()
    assert handled == n + 50, (variant, handled)  # each message once
    return median


async def plain_loops(url: str, tag: str, stream: JStream, n: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=stream.name, subjects=[f"hop{tag}.>"])
    handled = 0

    async def pull_loop() -> None:
        nonlocal handled
        sub = await js.pull_subscribe(f"hop{tag}.in", durable=f"d{tag}", stream=stream.name)
        while True:
            try:
                msgs = await sub.fetch(1, timeout=5.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                body = json.loads(msg.data)
                handled += 1
                await js.publish(f"hop{tag}.out", json.dumps(body).encode(), stream=stream.name)
                await msg.ack()

    await js.add_consumer(stream.name, ConsumerConfig(durable_name=f"d{tag}", filter_subject=f"hop{tag}.in"))
    loops = [asyncio.create_task(pull_loop()) for _ in range(4)]
    try:
        median = await timed_hops(url, tag, n)
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await nc.close()
    assert handled == n + 50, ("four plain loops", handled)
    return median


async def main(url: str, rounds: int, n: int) -> None:
    variants = ["one pull loop", "faststream max_workers=4", "four pull loops", "four plain loops"]
    medians = await interleaved(variants, rounds, lambda variant: hop(url, variant, n))
    print(f"{os.cpu_count()} cores; {rounds} rounds x {n} messages; publish -> republished, median ms")
    report(medians, "one pull loop", "ms", 3)


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # FastStream logs every message at INFO
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--messages", type=int, default=800)
    args = parser.parse_args()
    on_a_nats_server(lambda url: main(url, args.rounds, args.messages))
