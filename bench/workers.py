"""What concurrency costs a JetStream hop: a FastStream pull subscriber that republishes what it
gets, with one pull loop, with FastStream's `max_workers=4` (one loop feeding a pool of worker
tasks through a queue) and with four pull loops on the one durable (what
`services/runtime/messaging.py` `Messaging.durable` does for `max_workers=4`). One message at a
time, timed publish -> republished. Rounds interleave the variants; medians of each round's median.

    python -m bench.workers                 # 4 rounds x 800 messages per variant
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from typing import Any

from faststream.nats import JStream, NatsBroker, PullSub

from bench.rounds import interleaved, report
from bench.tracing_hop import on_a_nats_server, timed_hops


async def hop(url: str, variant: str, n: int) -> float:
    tag = uuid.uuid4().hex[:8]
    broker = NatsBroker(url)
    stream = JStream(f"hop{tag}", subjects=[f"hop{tag}.>"])
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
        for _ in range(3):  # as Messaging.start_workers adds them
            more = loop(include_in_schema=False)
            more(relay)
            await more.start()
    try:
        median = await timed_hops(url, tag, n)
    finally:
        await broker.stop()
    assert handled == n + 50, (variant, handled)  # each message once
    return median


async def main(url: str, rounds: int, n: int) -> None:
    variants = ["one pull loop", "faststream max_workers=4", "four pull loops"]
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
