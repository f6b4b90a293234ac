"""What one command costs each part: CPU per command of every process and NATS messages per
command on every connection, at a fixed rate the machine keeps up with.

Starts the fault suite's cluster (its own nats-server, with its monitoring port on loopback, and
PostgreSQL; each service its own process), warms it, then sends staging commands open-loop at
--rate for --seconds and waits until every one is deployed and audited. Reports, per command:

- CPU milliseconds of each process, user and system apart (/proc), and their total. A sampling
  profiler that counts wall time (py-spy) puts a fifth to two fifths of the guardian's and
  executor's samples in the socket write to NATS; their system time is a tenth of their CPU. The
  write wakes nats-server and on two busy cores the writer is often preempted there: time the
  process waits, not CPU it spends. This bench counts what the CPU does.
- messages each connection sent to and received from nats-server (its /connz), and the server's
  total: deliveries, acks, pull requests, KV reads and writes, PubAcks. Fewer messages per
  command is the lever that is left (issue 19); this is where it is counted.
- events stored per command in the stream and writes to each KV bucket.

    python -m bench.cost                          # 100 commands/s for 20 s
    python -m bench.cost --rate 150 --seconds 30

Compare commits by running each checkout's bench in one session, alternating: these machines
are noisy, and only numbers from the same hour compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.pipeline import pct
from bench.sustained import processes, run_at, settled, user_system
from services.runtime.embedded import EmbeddedNats, free_port
from tests.faults.harness import Cluster, auditor_caught_up
from tests.infra import IDENTITIES, connect


def monitor(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10) as answer:
        return dict(json.load(answer))


def messages(port: int) -> dict[str, tuple[int, int]]:
    """Messages (to the server, from the server) by connection name, and the server's total."""
    out: dict[str, tuple[int, int]] = {}
    for conn in monitor(port, "connz?limit=4096")["connections"]:
        name = conn.get("name") or "(unnamed)"
        sent, received = out.get(name, (0, 0))
        out[name] = (sent + conn["in_msgs"], received + conn["out_msgs"])
    varz = monitor(port, "varz")
    out["nats-server total"] = (varz["in_msgs"], varz["out_msgs"])
    return out


async def stored(nats_url: str) -> dict[str, int]:
    """Each stream's last sequence: events stored, and writes to each KV bucket."""
    nc = await connect(nats_url)
    try:
        return {info.config.name: info.state.last_seq for info in await nc.jetstream().streams_info()}
    finally:
        await nc.close()


LOAD = "load generator (this bench)"


async def snapshot(cluster: Cluster, procs: dict[str, int], port: int) -> dict[str, Any]:
    mine = os.times()
    return {
        "cpu": {name: user_system(name, pid) for name, pid in procs.items()} | {LOAD: (mine.user, mine.system)},
        "messages": await asyncio.to_thread(messages, port),
        "stored": await stored(cluster.nats.url),
    }


async def main_async(rate: float, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        nats = EmbeddedNats(Path(tmp) / "nats", port=free_port(), identities=IDENTITIES, monitor_port=port)
        cluster = await asyncio.to_thread(Cluster(Path(tmp), nats=nats).start)
        try:
            procs = processes(cluster)
            warm = await run_at(cluster, 20, 3)  # connections, caches and pools warm
            await settled(cluster, warm["plan_ids"])  # type: ignore[arg-type]
            await auditor_caught_up(cluster.nats.url)
            before, t0 = await snapshot(cluster, procs, port), time.perf_counter()
            result = await run_at(cluster, rate, seconds)
            deployed, _ = await settled(cluster, result["plan_ids"])  # type: ignore[arg-type]
            await auditor_caught_up(cluster.nats.url)
            after, elapsed = await snapshot(cluster, procs, port), time.perf_counter() - t0
        finally:
            cluster.stop()
    n = int(result["n"])  # type: ignore[call-overload]
    lat = result["latencies"]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"{n} staging commands at {rate:g}/s: deployed {deployed}, errors {len(result['errors'])}, "  # type: ignore[arg-type]
        f"POST -> decisive p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms"  # type: ignore[arg-type]
    )
    print(f"\n{'CPU per command (ms)':28} {'user':>7} {'system':>7} {'total':>7}")
    total = 0.0
    for name in procs:
        user = (after["cpu"][name][0] - before["cpu"][name][0]) / n * 1000
        system = (after["cpu"][name][1] - before["cpu"][name][1]) / n * 1000
        total += user + system
        print(f"{name:28} {user:7.2f} {system:7.2f} {user + system:7.2f}")
    print(f"{'all of them':28} {'':7} {'':7} {total:7.2f}")
    print(f"  = {total * rate / 1000:.2f} cores at {rate:g}/s; {2000 / total:.0f} commands/s would fill two cores")
    load = sum(after["cpu"][LOAD]) - sum(before["cpu"][LOAD])
    print(f"{LOAD:28} {'':7} {'':7} {load / n * 1000:7.2f}  (on the same two cores)")
    print(f"  (over {elapsed:.1f} s from the first command to the last event audited)")
    print(f"\n{'NATS messages per command':28} {'sent':>7} {'received':>9}")
    for name, (sent, received) in sorted(after["messages"].items()):
        was = before["messages"].get(name, (0, 0))
        print(f"{name:28} {(sent - was[0]) / n:7.2f} {(received - was[1]) / n:9.2f}")
    print(f"\n{'stored per command':28} {'messages':>9}")
    for name, last in sorted(after["stored"].items()):
        if grew := last - before["stored"].get(name, 0):
            print(f"{name:28} {grew / n:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second (one the machine keeps up with)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    import uvloop  # the load generator must not be the bottleneck

    uvloop.run(main_async(args.rate, args.seconds))


if __name__ == "__main__":
    main()
