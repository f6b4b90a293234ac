"""What tracing costs: the pipeline bench with OpenTelemetry off and on, in one run.

Three systems run side by side, each `agentops up` of its own (embedded NATS and PostgreSQL, every
service its own process), configured only through the standard variables an operator would use:
"off" (none set); "sampled" (OTEL_EXPORTER_OTLP_ENDPOINT with
OTEL_TRACES_SAMPLER=parentbased_traceidratio and OTEL_TRACES_SAMPLER_ARG=0.1, docker-compose's
default once an endpoint is given: one command in ten traced end to end); "every command" (the
endpoint alone: the SDK's default sampler). Staging commands go one after another, to each system
in turn (the order rotating), and each records POST -> decisive response and POST -> `deployed` in
the projection. Interleaving command by command puts whatever else the machine is doing on every
configuration alike: rounds of a few hundred commands each, one configuration after another, saw
the baseline alone move from 6.7 to 12.6 ms between rounds on this shared machine.
Spans go to a local collector per traced system that answers like an OTLP/HTTP endpoint and counts
them, in a process of its own: receiving them in the load generator's process took the load
generator's time (its GIL, while it timed commands), which a real collector, on another machine,
never does. Metrics are on in all three (they cannot be turned off).

    python -m bench.observability                   # 600 commands for each configuration
    python -m bench.observability --commands 300 --ratio 0.25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.pipeline import one_command, pct, start_system
from services.runtime.embedded import free_port


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace endpoint that keeps each export (protobuf) and counts its spans when
    asked (GET /spans), after the round."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[bytes] = []
        self.counted = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def spans(self) -> int:
        """Spans received so far: the exports kept since the last count are decoded and dropped
        (kept, every round's would pile up in this process for the rest of the run)."""
        with self.lock:
            bodies, self.bodies = self.bodies, []
        self.counted += sum(
            len(s.spans)
            for body in bodies
            for r in ExportTraceServiceRequest.FromString(body).resource_spans
            for s in r.scope_spans
        )
        return self.counted

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_GET(self) -> None:
        body = str(self.server.spans).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int) -> None:
    Collector(port).serve_forever()


class Elsewhere:
    """The collector in a process of its own, asked for its span count over HTTP."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = multiprocessing.get_context("spawn").Process(target=serve, args=(self.port,), daemon=True)
        self.process.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.spans  # noqa: B018 - answering: up
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans(self) -> int:
        with urllib.request.urlopen(f"{self.url}/spans", timeout=60) as answer:
            return int(answer.read())

    def shutdown(self) -> None:
        self.process.terminate()


SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}  # + OTEL_TRACES_SAMPLER_ARG


class System:
    """One `agentops up` in a home of its own, with `env` added to its environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.home = tempfile.TemporaryDirectory()
        port = free_port()
        self.proc = start_system(Path(self.home.name), port, env)
        # its output is read to the end, so a full pipe never stops the system mid-run
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        runtime = json.loads((Path(self.home.name) / "runtime.json").read_text())
        key = (Path(self.home.name) / "admin-key").read_text().strip()
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        self.conn = psycopg.connect(runtime["database_url"], autocommit=True)

    async def command(self, app: str) -> tuple[float, float]:
        return await one_command(self.client, self.conn, app)

    async def stop(self) -> None:
        await self.client.aclose()
        self.conn.close()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        self.home.cleanup()


async def measure(configs: dict[str, dict[str, str]], n: int) -> dict[str, list[tuple[float, float]]]:
    """n timed commands (after 10 warm-up ones) to each configuration's system, interleaved."""
    systems: dict[str, System] = {}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    names = list(configs)
    try:
        for name, env in configs.items():
            systems[name] = System(env)
        for i in range(n + 10):
            turn = names[i % len(names) :] + names[: i % len(names)]  # nobody always goes first
            for name in turn:
                timed = await systems[name].command(f"bench-{i}")
                if i >= 10:
                    results[name].append(timed)
    finally:
        for system in systems.values():  # the ones that started, if one did not
            await system.stop()  # the shutdown flushes every process's spans
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=600, help="timed commands per configuration")
    parser.add_argument("--blocks", type=int, default=5, help="the run is also reported in this many parts")
    parser.add_argument(
        "--ratio", default="0.1", help="the sampled configuration's OTEL_TRACES_SAMPLER_ARG (docker-compose's default)"
    )
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[name]  # "off" must be off
    sampled, every = f"sampled {args.ratio}", "every command"
    collectors = {sampled: Elsewhere(), every: Elsewhere()}
    configs = {
        "off": {},
        sampled: {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collectors[sampled].url,
            **SAMPLED,
            "OTEL_TRACES_SAMPLER_ARG": args.ratio,
        },
        every: {"OTEL_EXPORTER_OTLP_ENDPOINT": collectors[every].url},
    }
    results = asyncio.run(measure(configs, args.commands))
    spans = {name: collectors[name].spans / (args.commands + 10) if name in collectors else 0.0 for name in configs}
    for collector in collectors.values():
        collector.shutdown()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.commands} commands to each configuration, interleaved one by one"
    )

    def p50(name: str, which: int, part: slice = slice(None)) -> float:
        return pct([timed[which] for timed in results[name][part]], 50)

    size = max(1, args.commands // args.blocks)
    blocks = [slice(b * size, (b + 1) * size) for b in range(args.blocks)]
    head = f"{'decisive p50':>12} {'ratio':>6} {'deployed p50':>12} {'ratio':>6} {'spans/cmd':>9}"
    print(f"{'tracing':22} {head}  decisive ratio by part")
    for name in configs:
        d, p = p50(name, 0), p50(name, 1)
        parts = " ".join(f"{p50(name, 0, b) / p50('off', 0, b):.2f}" for b in blocks)
        ratios = f"{d / p50('off', 0):6.2f} {p:9.2f} ms {p / p50('off', 1):6.2f} {spans[name]:9.1f}"
        print(f"{name:22} {d:9.2f} ms {ratios}  {parts}")


if __name__ == "__main__":
    main()
