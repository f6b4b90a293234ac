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


class RawRelay:
    """The same number of hops, each a subscriber that republishes: the broker's floor (on the
    same authenticated server, as the admin identity: no signing, no framework)."""

    def __init__(self, url: str, home: Path) -> None:
        self.url, self.settings = url, Settings(agentops_home=home)
        self.done: asyncio.Queue[float] = asyncio.Queue()
        self.ncs: list[nats.NATS] = []

    async def start(self) -> RawRelay:
        self.ncs = [await nats.connect(self.url, **connect_options(self.settings, "admin")) for _ in range(HOPS + 2)]
        for hop in range(HOPS):

            async def relay(msg, hop: int = hop, nc=self.ncs[hop]) -> None:  # type: ignore[no-untyped-def]
                await nc.publish(f"bench.hop.{hop + 1}", msg.data)

            await self.ncs[hop].subscribe(f"bench.hop.{hop}", cb=relay)

        async def finish(msg) -> None:  # type: ignore[no-untyped-def]
            self.done.put_nowait(time.perf_counter())

        await self.ncs[HOPS].subscribe(f"bench.hop.{HOPS}", cb=finish)
        for nc in self.ncs:
            await nc.flush()
        return self

    async def once(self) -> float:
        """ms for one message through every hop."""
        t0 = time.perf_counter()
        await self.ncs[-1].publish("bench.hop.0", b"x" * 600)
        return (await self.done.get() - t0) * 1000

    async def stop(self) -> None:
        for nc in self.ncs:
            await nc.close()


async def measure(base: str, runtime: dict[str, str], key: str, home: Path, n: int) -> dict[str, list[float]]:
    """n staging commands and n raw relays, alternating one by one (after 10 of each to warm up),
    so whatever else the machine is doing falls on both alike; then n raw relays back to back.
    The two floors differ: a relay between commands finds its code and the processes' caches as
    cold as a command does (0.9-1.1 ms here), one in a tight loop finds them hot (0.6-0.7 ms)."""
    raw = await RawRelay(runtime["nats_url"], home).start()
    timed: dict[str, list[float]] = {"decisive": [], "deployed": [], "raw": [], "raw back to back": []}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
            with psycopg.connect(runtime["database_url"], autocommit=True) as conn:
                for i in range(n + 10):
                    floor = await raw.once()
                    decisive, deployed = await one_command(client, conn, f"bench-{i}")
                    if i >= 10:
                        timed["decisive"].append(decisive)
                        timed["deployed"].append(deployed)
                        timed["raw"].append(floor)
        for i in range(n + 10):  # and back to back, hot: the floor as a tight loop sees it
            floor = await raw.once()
            if i >= 10:
                timed["raw back to back"].append(floor)
    finally:
        await raw.stop()
    return timed


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
            key = (Path(tmp) / "admin-key").read_text().strip()
            timed = asyncio.run(measure(f"http://127.0.0.1:{port}", runtime, key, Path(tmp), n))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    decisive, deployed, raw, hot = timed["decisive"], timed["deployed"], timed["raw"], timed["raw back to back"]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{n} commands, each after one raw relay"
    )
    print(f"{'measure':44} {'p50 ms':>9} {'p99 ms':>9}")
    rows = [
        ("POST -> decisive response", decisive),
        ("POST -> deployed in projection", deployed),
        (f"raw nats-py pub/sub, {HOPS} hops, between commands", raw),
        (f"raw nats-py pub/sub, {HOPS} hops, back to back", hot),
    ]
    for name, values in rows:
        print(f"{name:44} {pct(values, 50):9.2f} {pct(values, 99):9.2f}")
    for floor, values in (("between commands", raw), ("back to back", hot)):
        print(
            f"ratio to raw {floor}, p50: decisive {pct(decisive, 50) / pct(values, 50):.1f}x, "
            f"deployed {pct(deployed, 50) / pct(values, 50):.1f}x"
        )
    print(f"mean deployed {statistics.mean(deployed):.2f} ms")


if __name__ == "__main__":
    main()
