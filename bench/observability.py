"""What tracing costs: the pipeline bench with OpenTelemetry off and on, alternating in one run.

Each round starts `agentops up` afresh (embedded NATS and PostgreSQL, every service its own
process), sends --commands staging commands one after another and records POST -> decisive
response and POST -> `deployed` in the projection. Three configurations,
set only through the standard variables an operator would use: "off" (none set); "sampled"
(OTEL_EXPORTER_OTLP_ENDPOINT with OTEL_TRACES_SAMPLER=parentbased_traceidratio and
OTEL_TRACES_SAMPLER_ARG=0.1, docker-compose's default once an endpoint is given: one command in ten
traced end to end); "every command" (the endpoint alone: the SDK's default sampler). Spans go to
a local collector that answers like an OTLP/HTTP endpoint and counts them, in a process of its
own: receiving them in the load generator's process took the load generator's time (its GIL, while
it timed commands), which a real collector, on another machine, never does.
Metrics are on in all three (they cannot be turned off). Rounds interleave the configurations so
the machine's drift falls on each; ratios are of the medians of the rounds' p50s.

    python -m bench.observability                   # 3 rounds of each, 200 commands per round
    python -m bench.observability --rounds 2 --commands 100 --ratio 0.25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import statistics
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.pipeline import pct, pipeline, start_system
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


def one_round(extra: dict[str, str] | None, n: int, collector: Elsewhere) -> tuple[list[float], list[float]]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, **extra} if extra is not None else {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_system(Path(tmp), port, env)
        try:
            runtime = json.loads((Path(tmp) / "runtime.json").read_text())
            key = (Path(tmp) / "admin-key").read_text().strip()
            return asyncio.run(pipeline(f"http://127.0.0.1:{port}", runtime["database_url"], n, key))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ratio", default="0.1", help="the sampled configuration's OTEL_TRACES_SAMPLER_ARG (docker-compose's default)"
    )
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[name]  # "off" must be off
    collector = Elsewhere()
    configs: dict[str, dict[str, str] | None] = {
        "off": None,
        f"sampled {args.ratio}": {**SAMPLED, "OTEL_TRACES_SAMPLER_ARG": args.ratio},
        "every command": {},
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    spans: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, extra in configs.items():  # interleaved: the machine's drift falls on each alike
            before = collector.spans
            decisive, deployed = one_round(extra, args.commands, collector)
            results[name].append((pct(decisive, 50), pct(deployed, 50)))
            # the shutdown flushed every process's spans; warm-up commands included
            spans[name].append((collector.spans - before) / (args.commands + 10))
            print(f"  {name:16}: decisive p50 {pct(decisive, 50):6.2f} ms, deployed p50 {pct(deployed, 50):6.2f} ms")
    collector.shutdown()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.rounds} rounds x {args.commands} commands each"
    )
    off_d = statistics.median(d for d, _ in results["off"])
    off_p = statistics.median(p for _, p in results["off"])
    head = f"{'decisive ms':>12} {'ratio':>6} {'deployed ms':>12} {'ratio':>6} {'spans/cmd':>9}"
    print(f"{'tracing (median of p50s)':22} {head}")
    for name in configs:
        d = statistics.median(d for d, _ in results[name])
        p = statistics.median(p for _, p in results[name])
        per = statistics.mean(spans[name])
        print(f"{name:22} {d:12.2f} {d / off_d:6.2f} {p:12.2f} {p / off_p:6.2f} {per:9.1f}")


if __name__ == "__main__":
    main()
