"""Live-event fan-out: what a thousand open dashboards cost the decisive answer and the gateway.

Runs `agentops up` (embedded NATS and PostgreSQL) and, in one run, sends the same commands
(--commands staging commands at --rate per second, open loop) twice: with no live-event client,
then with --clients `GET /api/events` streams open (plain sockets reading as a browser would).
Prints the decisive p50/p99 of each phase and their ratio, the CPU seconds per second the gateway
and PostgreSQL used in each, and for the second phase how far each client was behind the log:
for every event, the time it arrived minus the time the auditor recorded it.

    python -m bench.fanout                        # 1,000 clients, 60 commands at 10/s
    python -m bench.fanout --clients 300 --commands 100 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import re
import signal
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvloop

from bench.pipeline import pct, start_system
from bench.sustained import cpu_seconds
from services.runtime.embedded import free_port

ID = re.compile(rb"^id: (\d+)$", re.MULTILINE)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of the gateway and of PostgreSQL (the server and every backend)."""
    postgres = pids["postgres"]
    total = 0.0
    for pid in [postgres, *children(postgres)]:
        with contextlib.suppress(OSError):  # a backend that just ended
            total += cpu_seconds(pid)
    return {"gateway": cpu_seconds(pids["gateway"]), "postgres": total, "bench": cpu_seconds(os.getpid())}


class Client(asyncio.Protocol):
    """One live-event stream, read as it comes with as little work as a client can do (the
    chunks and their arrival times are kept; which event arrived when is worked out afterwards)."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.chunks: list[tuple[float, bytes]] = []
        self.ready = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.chunks.append((time.time(), data))
        self.ready.set()

    def arrived(self) -> dict[int, float]:
        """Each seq, and when the chunk that completed its `id:` line arrived."""
        data, ends, at = b"".join(c for _, c in self.chunks), [], 0
        for _, chunk in self.chunks:
            at += len(chunk)
            ends.append(at)
        out: dict[int, float] = {}
        i = 0
        for match in ID.finditer(data):
            while ends[i] < match.end():
                i += 1
            out.setdefault(int(match.group(1)), self.chunks[i][0])
        return out


def clients_process(port: int, key: str, n: int, ready: Any, stop: Any, out: Any) -> None:
    """The clients, in a process of their own: their reading never delays the timing of the
    commands (it still shares the two cores, as browsers on the same machine would)."""
    request = (
        f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        clients = [Client(request) for _ in range(n)]
        for i, client in enumerate(clients):
            await loop.create_connection(partial(lambda c: c, client), "127.0.0.1", port)
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # not one accept burst
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 120)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for client in clients:
            if client.transport is not None:
                client.transport.close()
        out.send([c.arrived() for c in clients])

    uvloop.run(main())


async def commands(base: str, key: str, n: int, rate: float, tag: str) -> list[float]:
    """n staging commands, one every 1/rate seconds whatever the answers do (open loop)."""
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(
        base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}, limits=limits
    ) as http:

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            r = await http.post(
                "/api/agent/command", json={"command": f"deploy llama 3.1 8b for {tag}-{i}", "env": "staging"}
            )
            assert r.status_code in (200, 202), r.text
            return (time.perf_counter() - t0) * 1000

        tasks, start = [], time.perf_counter()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        return list(await asyncio.gather(*tasks))


def settled(db_url: str, timeout: float = 120.0) -> None:
    """Until every accepted plan is deployed (the log holds all it will for this phase)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            left = conn.execute("SELECT count(*) FROM deployments WHERE status <> 'deployed'").fetchone()
            if left and left[0] == 0:
                return
            time.sleep(0.2)
    raise SystemExit("the commands did not all deploy")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_system(Path(tmp), port)
        try:
            runtime = json.loads((Path(tmp) / "runtime.json").read_text())
            key = (Path(tmp) / "admin-key").read_text().strip()
            base, pids, db = f"http://127.0.0.1:{port}", runtime["pids"], runtime["database_url"]
            await commands(base, key, 10, args.rate, "warm")  # warm-up
            settled(db)

            before, t0 = cpu(pids), time.monotonic()
            alone = await commands(base, key, args.commands, args.rate, "alone")
            settled(db)
            alone_cpu = {k: (v - before[k]) / (time.monotonic() - t0) for k, v in cpu(pids).items()}

            ready, stop = multiprocessing.Event(), multiprocessing.Event()
            receive, send = multiprocessing.Pipe(duplex=False)
            readers = multiprocessing.Process(
                target=clients_process, args=(port, key, args.clients, ready, stop, send), daemon=True
            )
            readers.start()
            if not await asyncio.to_thread(ready.wait, 180):
                raise SystemExit("the clients did not all connect")
            with psycopg.connect(db, autocommit=True) as conn:
                first = (conn.execute("SELECT coalesce(max(seq), 0) FROM audit_events").fetchone() or (0,))[0]
            before, t0, clients0 = cpu(pids), time.monotonic(), cpu_seconds(readers.pid or 0)
            watched = await commands(base, key, args.commands, args.rate, "watched")
            settled(db)
            with psycopg.connect(db, autocommit=True) as conn:
                recorded = {
                    seq: at.timestamp()
                    for seq, at in conn.execute("SELECT seq, recorded_at FROM audit_events WHERE seq > %s", (first,))
                }
            # every client gets every event of the phase (or the bench says how many did not)
            await asyncio.sleep(2.0)  # what is on its way arrives (lags are measured, not this)
            watched_cpu = {k: (v - before[k]) / (time.monotonic() - t0) for k, v in cpu(pids).items()}
            watched_cpu["bench"] += (cpu_seconds(readers.pid or 0) - clients0) / (time.monotonic() - t0)
            stop.set()
            arrivals = await asyncio.to_thread(receive.recv)
            readers.join(30)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    complete = sum(set(recorded) <= set(arrived) for arrived in arrivals)
    worst = [max((arrived[s] - at for s, at in recorded.items() if s in arrived), default=0.0) for arrived in arrivals]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.commands} commands at {args.rate}/s per phase; the clients read in a process of their own"
    )
    cpu_header = f"CPU s/s: {'gateway':>7} {'postgres':>8} {'bench (with clients)':>22}"
    print(f"{'phase':20} {'decisive p50':>13} {'p99':>9}   {cpu_header}")
    for name, lat, use in (("no clients", alone, alone_cpu), (f"{args.clients} SSE clients", watched, watched_cpu)):
        print(
            f"{name:20} {pct(lat, 50):10.2f} ms {pct(lat, 99):6.1f} ms {'':9} "
            f"{use['gateway']:7.2f} {use['postgres']:8.2f} {use['bench']:22.2f}"
        )
    print(f"decisive p50 with clients / without: {pct(watched, 50) / pct(alone, 50):.2f}x")
    print(
        f"clients that got all {len(recorded)} events of the phase: {complete}/{len(arrivals)}; "
        f"each client's worst lag behind the log: p50 {pct(worst, 50) * 1000:.0f} ms, "
        f"p99 {pct(worst, 99) * 1000:.0f} ms, max {max(worst) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--commands", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
