"""Staging flow latency: POST /api/agent/command -> `deployed` in the projection, next to raw nats-py.

Runs `agentops up` (embedded NATS and PostgreSQL, every service its own process) and, in the same
run, a chain of raw nats-py publish/subscribe relays with as many hops as the pipeline has
(gateway -> planner -> guardian -> executor -> auditor: 4 broker hops). Prints p50/p99 and ratios.

    make bench            # or: python -m bench.pipeline --commands 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import nats
import psycopg

from services.runtime.embedded import free_port
from shared.broker import connect_options
from shared.settings import Settings

HOPS = 4


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def start_system(home: Path, port: int, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "IDENTITY_DIR")}
    env.update(extra or {})
    # latency, not the per-key rate limit, is what this measures
    env.update(AGENTOPS_HOME=str(home), PYTHONUNBUFFERED="1", COMMAND_RATE_PER_MINUTE="1000000", COMMAND_BURST="100000")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.runtime.cli", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "AgentOps is up" in line:
            return proc
    raise SystemExit(f"agentops up failed to start (exit {proc.wait()})")


async def pipeline(base: str, db_url: str, n: int, key: str) -> tuple[list[float], list[float]]:
    decisive, deployed = [], []
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for i in range(n + 10):
                to_decision, to_deployed = await one_command(client, conn, f"bench-{i}")
                if i >= 10:  # warm-up
                    decisive.append(to_decision)
                    deployed.append(to_deployed)
    return decisive, deployed


async def one_command(client: httpx.AsyncClient, conn: psycopg.Connection, app: str) -> tuple[float, float]:
    """One staging command for `app`: ms from POST to the decisive response, and to `deployed` in
    the projection."""
    t0 = time.perf_counter()
    r = await client.post("/api/agent/command", json={"command": f"deploy llama 3.1 8b for {app}", "env": "staging"})
    t1 = time.perf_counter()
    plan_id = r.json()["plan_id"]
    while True:
        row = conn.execute("SELECT status FROM deployments WHERE plan_id = %s", (plan_id,)).fetchone()
        if row and row[0] == "deployed":
            break
        await asyncio.sleep(0.0005)
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t0) * 1000


async def raw_nats(url: str, n: int, home: Path) -> list[float]:
    """The same number of hops, each a subscriber that republishes: the broker's floor (on the
    same authenticated server, as the admin identity: no signing, no framework)."""
    settings = Settings(agentops_home=home)

    async def connect() -> nats.NATS:
        return await nats.connect(url, **connect_options(settings, "admin"))

    ncs = [await connect() for _ in range(HOPS + 1)]
    done: asyncio.Queue[float] = asyncio.Queue()
    for hop in range(HOPS):

        async def relay(msg, hop: int = hop, nc=ncs[hop]) -> None:  # type: ignore[no-untyped-def]
            await nc.publish(f"bench.hop.{hop + 1}", msg.data)

        await ncs[hop].subscribe(f"bench.hop.{hop}", cb=relay)

    async def finish(msg) -> None:  # type: ignore[no-untyped-def]
        done.put_nowait(time.perf_counter())

    await ncs[HOPS].subscribe(f"bench.hop.{HOPS}", cb=finish)
    for nc in ncs:
        await nc.flush()
    samples = []
    sender = await connect()
    for i in range(n + 10):
        t0 = time.perf_counter()
        await sender.publish("bench.hop.0", b"x" * 600)
        t1 = await done.get()
        if i >= 10:
            samples.append((t1 - t0) * 1000)
    for nc in [*ncs, sender]:
        await nc.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=500)
    n = parser.parse_args().commands
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_system(Path(tmp), port)
        try:
            import json

            runtime = json.loads((Path(tmp) / "runtime.json").read_text())
            decisive, deployed = asyncio.run(
                pipeline(
                    f"http://127.0.0.1:{port}",
                    runtime["database_url"],
                    n,
                    (Path(tmp) / "admin-key").read_text().strip(),
                )
            )
            raw = asyncio.run(raw_nats(runtime["nats_url"], n, Path(tmp)))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; {n} commands")
    print(f"{'measure':44} {'p50 ms':>9} {'p99 ms':>9}")
    rows = [
        ("POST -> decisive response", decisive),
        ("POST -> deployed in projection", deployed),
        (f"raw nats-py pub/sub, {HOPS} hops", raw),
    ]
    for name, values in rows:
        print(f"{name:44} {pct(values, 50):9.2f} {pct(values, 99):9.2f}")
    print(
        f"ratio deployed/raw (p50): {pct(deployed, 50) / pct(raw, 50):.1f}x; "
        f"(p99): {pct(deployed, 99) / pct(raw, 99):.1f}x; mean deployed {statistics.mean(deployed):.2f} ms"
    )


if __name__ == "__main__":
    main()
