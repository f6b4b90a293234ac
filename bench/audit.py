"""Audit log speed: append (chained, in batches), verify, and the deployments list with 10,000 plans.

Baseline in the same run: hashing the same canonical JSON in a tight loop (the cost floor of a
chain). Run: `make bench` or `.venv/bin/python -m bench.audit [--events N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.planner import pct
from services.auditor.chain import verify_rows
from services.auditor.store import Signed, append_many, chain_rows
from services.auditor.verify import verify
from services.runtime.bootstrap import build
from services.runtime.embedded import EmbeddedNats, EmbeddedPostgres
from services.runtime.natsconf import ensure_identities
from services.runtime.provision import database_logins
from shared.broker import ensure_stream
from shared.db import make_engine
from shared.events import IntentReceived, IntentReceivedData, canonical_json
from shared.identity import TrustedSigners
from shared.settings import Settings
from tests.keys import api_keys_env, headers


def events(n: int) -> list[IntentReceived]:
    return [
        IntentReceived(
            plan_id=uuid.uuid4().hex,
            actor="bench",
            data=IntentReceivedData(command=f"deploy llama 3.1 8b for bench-{i}", user_id="bench"),
        )
        for i in range(n)
    ]


LISTED = 10_000


async def list_latencies(nats_url: str, url: str, plans: int, identities: Path) -> list[float]:
    settings = Settings(nats_url=nats_url, database_url=url, api_keys=api_keys_env(), identity_dir=identities)
    app = build("gateway", settings)
    latencies = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://g", headers=headers("vic")) as client:
            for i in range(200):
                t0 = time.perf_counter()
                r = await client.get("/api/deployments", params={"limit": 50, "offset": (i * 50) % plans})
                latencies.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.json()["count"] == plans
    return latencies


async def main(n: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        signers = ensure_identities(home / "identity")
        pg = EmbeddedPostgres(home / "pg").start()
        nats = EmbeddedNats(home / "nats", identities=home / "identity").start()
        try:
            await ensure_stream(nats.url, Settings(nats_url=nats.url, identity_dir=home / "identity"))
            logins = await asyncio.to_thread(database_logins, pg.url(), home)
            url = logins["cli"]
            engine = make_engine(logins["auditor"])
            # signed as the gateway signs them (the auditor stores the producer's signature)
            batch_events = [Signed.of(e, signers["gateway"]) for e in events(n)]
            # The bench holds every event it will append; a running auditor holds one batch.
            # Frozen, that list is not rescanned by each garbage collection the append's own
            # allocations trigger (which made the bench, not the auditor, the cost measured).
            gc.freeze()
            listed = min(LISTED, n)
            t0 = time.perf_counter()
            for i in range(0, listed, batch):
                await append_many(engine, batch_events[i : min(i + batch, listed)])
            append_s = time.perf_counter() - t0
            # with exactly `listed` deployments
            latencies = await list_latencies(nats.url, logins["gateway"], listed, home / "identity")
            t0 = time.perf_counter()
            for i in range(listed, n, batch):
                await append_many(engine, batch_events[i : i + batch])
            append_s += time.perf_counter() - t0

            payloads = [e.payload for e in batch_events]
            t0 = time.perf_counter()
            prev = "0" * 64
            for p in payloads:
                prev = hashlib.sha256((prev + canonical_json(p)).encode()).hexdigest()
            floor_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            verdict = await verify(url)
            verify_s = time.perf_counter() - t0
            assert verdict.ok and verdict.count == n, verdict.describe()
            # the walk that decodes and re-encodes every event (rows older than migration 0004,
            # and any range where the stored text fails): the baseline of the stored-text walk
            reader = make_engine(url)
            t0 = time.perf_counter()
            async with reader.connect() as conn:
                full = verify_rows([row async for row in chain_rows(conn)])
            full_s = time.perf_counter() - t0
            await reader.dispose()
            assert full.ok and full.head_hash == verdict.head_hash
            trusted = TrustedSigners.from_file(home / "identity" / "signers.json")
            t0 = time.perf_counter()
            signed_verdict = await verify(url, trusted=trusted)
            signed_s = time.perf_counter() - t0
            assert signed_verdict.ok and signed_verdict.count == n, signed_verdict.describe()
            await engine.dispose()
        finally:
            nats.stop()
            pg.stop()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; embedded PostgreSQL; {n} events")
    print(f"  append (chained, batches of {batch}): {n / append_s:,.0f} events/s")
    print(f"  verify whole chain:                 {n / verify_s:,.0f} events/s  ({verdict.describe()[:40]}...)")
    print(
        f"  verify, full walk (decode, re-encode): {n / full_s:,.0f} events/s  -> stored text {full_s / verify_s:.1f}x"
    )
    print(f"  verify with every signature:        {n / signed_s:,.0f} events/s")
    print(f"  hash floor (same JSON, tight loop): {n / floor_s:,.0f} events/s  -> verify at {floor_s / verify_s:.0%}")
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print(f"  GET /api/deployments ({min(LISTED, n)} plans, pages of 50): p50 {p50:.1f} ms  p99 {p99:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.batch))
