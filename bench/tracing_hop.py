"""What tracing costs one JetStream hop: a FastStream subscriber that republishes what it gets,
timed publish -> republished, with no telemetry middleware, FastStream's, and ours
(services/runtime/telemetry.py), for a message of a sampled trace and of an unsampled one.

Spans go to an exporter that keeps nothing (export is not what is measured). The broker is an
embedded nats-server of its own (or AGENTOPS_TEST_NATS_URL's, a stream per run, deleted after).
Rounds interleave the variants; medians of each round's median.

    python -m bench.tracing_hop                 # 3 rounds x 1,000 messages per variant
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import nats
from faststream.nats import JStream, NatsBroker, PullSub
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.rounds import interleaved, report
from services.runtime.embedded import EmbeddedNats
from services.runtime.telemetry import nats_middleware

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-"  # + flags: 01 sampled, 00 not


class Nowhere(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def middlewares(variant: str) -> list[Any]:
    if variant == "none":
        return []
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Nowhere()))
    if variant == "faststream":
        from faststream.nats.opentelemetry import NatsTelemetryMiddleware

        return [NatsTelemetryMiddleware(tracer_provider=provider)]
    return [nats_middleware(provider)]


async def hop(url: str, variant: str, flags: str, n: int) -> float:
    tag = uuid.uuid4().hex[:8]
    broker = NatsBroker(url, middlewares=middlewares(variant))
    stream = JStream(f"hop{tag}", subjects=[f"hop{tag}.>"])

    @broker.subscriber(f"hop{tag}.in", stream=stream, durable=f"d{tag}", pull_sub=PullSub(batch_size=1))
    async def relay(body: dict[str, Any]) -> None:
        await broker.publish(body, f"hop{tag}.out", stream=stream.name)

    await broker.start()
    try:
        return await timed_hops(url, tag, n, {"traceparent": PARENT + flags})
    finally:
        await broker.stop()


async def timed_hops(url: str, tag: str, n: int, headers: dict[str, str] | None = None) -> float:
    """Median ms from publishing to stream `hop<tag>`'s subject `hop<tag>.in` to the relay's
    republished message arriving on `hop<tag>.out`, one message at a time, after 50 warm-up
    ones; the stream is deleted afterwards."""
    stream = f"hop{tag}"
    nc = await nats.connect(url)
    js = nc.jetstream()
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def got(_msg: Any) -> None:
        arrived.put_nowait(time.perf_counter())

    sub = await js.subscribe(f"hop{tag}.out", cb=got, stream=stream)
    times = []
    try:
        for i in range(n + 50):
            t0 = time.perf_counter()
            await js.publish(f"hop{tag}.in", b'{"a": 1}', stream=stream, headers=headers)
            t1 = await asyncio.wait_for(arrived.get(), 10)
            if i >= 50:  # warm-up
                times.append((t1 - t0) * 1000)
    finally:
        await sub.unsubscribe()
        await js.delete_stream(stream)
        await nc.close()
    return statistics.median(times)


async def main(url: str, rounds: int, n: int) -> None:
    variants = {
        "none": ("none", "01"),
        "faststream sampled": ("faststream", "01"),
        "ours sampled": ("ours", "01"),
        "faststream unsampled": ("faststream", "00"),
        "ours unsampled": ("ours", "00"),
    }
    medians = await interleaved(variants, rounds, lambda name: hop(url, *variants[name], n))
    print(f"{os.cpu_count()} cores; {rounds} rounds x {n} messages; publish -> republished, median ms")
    report(medians, "none", "ms", 3)


def on_a_nats_server(run: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """`run(url)` against AGENTOPS_TEST_NATS_URL's server, or an embedded one of its own."""
    if url := os.environ.get("AGENTOPS_TEST_NATS_URL"):
        asyncio.run(run(url))
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp)).start()
        try:
            asyncio.run(run(server.url))
        finally:
            server.stop()


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # FastStream logs every message at INFO
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    on_a_nats_server(lambda url: main(url, args.rounds, args.messages))
