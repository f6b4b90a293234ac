"""The runtime's message counting (`services/runtime/metrics.py` `Flow`) records what FastStream's
own Prometheus middleware records, series for series, so the dashboard and alert rules read them
alike: both run the same handlers (one that succeeds, one that asks for a redelivery, one that
fails) and publishes through FastStream's in-memory broker, and their counts are compared."""

from __future__ import annotations

import re

import pytest
from faststream.exceptions import NackMessage
from faststream.nats import NatsBroker, TestNatsBroker
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CollectorRegistry, generate_latest

from services.runtime.metrics import PREFIX, Metrics

SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


async def scenario(middleware: object) -> None:
    broker = NatsBroker(middlewares=(middleware,))
    out = broker.publisher("agentops.out")

    @broker.subscriber("agentops.ok")
    async def ok(body: dict[str, str]) -> None:
        await out.publish({"relayed": body["n"]})

    @broker.subscriber("agentops.again")
    async def again(body: dict[str, str]) -> None:
        raise NackMessage(delay=1)

    @broker.subscriber("agentops.broken")
    async def broken(body: dict[str, str]) -> None:
        raise ValueError("a bug")

    async with TestNatsBroker(broker) as br:
        for n in range(3):
            await br.publish({"n": str(n)}, "agentops.ok")
        await br.publish({"n": "x"}, "agentops.again")
        with pytest.raises(ValueError, match="a bug"):
            await br.publish({"n": "y"}, "agentops.broken")
        await br.publish({"n": "z"}, "agentops.out")


def counts(exposition: bytes) -> dict[tuple[str, str], float]:
    """Every count of the message series (counters, gauges, histogram counts) that is not zero:
    durations and sizes differ run to run, and a series resolved ahead and never used is 0."""
    found = {}
    for line in exposition.decode().splitlines():
        m = SAMPLE.match(line)
        if m and m[1].endswith(("_total", "_count", "in_process")) and float(m[3]):
            found[(m[1], m[2])] = float(m[3])
    return found


async def test_the_runtime_counts_messages_as_faststreams_middleware_does() -> None:
    theirs = CollectorRegistry()
    await scenario(NatsPrometheusMiddleware(registry=theirs, app_name="svc", metrics_prefix=PREFIX))
    ours = Metrics("svc")
    await scenario(ours.middleware())

    expected = counts(generate_latest(theirs))
    assert counts(ours.exposition()) == expected
    # and the scenario did reach every kind of series it is meant to compare
    names = {name for name, _ in expected}
    assert {
        f"{PREFIX}_received_messages_total",
        f"{PREFIX}_received_processed_messages_total",
        f"{PREFIX}_received_processed_messages_exceptions_total",
        f"{PREFIX}_published_messages_total",
        f"{PREFIX}_received_processed_messages_duration_seconds_count",
        f"{PREFIX}_published_messages_duration_seconds_count",
    } <= names, names
    statuses = {labels for name, labels in expected if name.endswith("processed_messages_total")}
    assert any('status="acked"' in s for s in statuses) and any('status="nacked"' in s for s in statuses)
