"""What tracing costs: the pipeline bench with OpenTelemetry off and on, alternating in one run.

Each round starts `agentops up` afresh (embedded NATS and PostgreSQL, every service its own
process), sends --commands staging commands one after another and records POST -> decisive
response and POST -> `deployed` in the projection. "on" sets only the standard variables an
operator would (OTEL_EXPORTER_OTLP_ENDPOINT, per-service names by default) and exports to a local
collector in this process that answers like an OTLP/HTTP endpoint and counts the spans it is sent;
"off" leaves them unset. Metrics are on in both (they cannot be turned off). Rounds alternate
off/on so the machine's drift falls on both; the ratio is of the medians of the rounds' p50s.

    python -m bench.observability                   # 3 rounds of each, 200 commands per round
    python -m bench.observability --rounds 2 --commands 100
    python -m bench.observability --on-env OTEL_TRACES_SAMPLER=parentbased_traceidratio \
        --on-env OTEL_TRACES_SAMPLER_ARG=0.1     # one command in ten traced
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.pipeline import pct, pipeline, start_system
from services.runtime.embedded import free_port


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace endpoint: decodes each export (protobuf) and counts its spans."""

    def __init__(self) -> None:
        self.spans = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with self.server.lock:
            self.server.spans += count
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def one_round(traced: bool, n: int, collector: Collector, on_env: dict[str, str]) -> tuple[list[float], list[float]]:
    extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, **on_env} if traced else {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_system(Path(tmp), port, extra)
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
        "--on-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more OTEL_* for the 'on' rounds, e.g. OTEL_TRACES_SAMPLER=parentbased_traceidratio",
    )
    args = parser.parse_args()
    on_env = dict(item.split("=", 1) for item in args.on_env)
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[name]  # "off" must be off
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    spans_per_command = []
    for _ in range(args.rounds):
        for traced in (False, True):
            before = collector.spans
            decisive, deployed = one_round(traced, args.commands, collector, on_env)
            results[traced].append((pct(decisive, 50), pct(deployed, 50)))
            if traced:  # the shutdown flushed every process's spans; warm-up commands included
                spans_per_command.append((collector.spans - before) / (args.commands + 10))
            label = "on " if traced else "off"
            print(
                f"  tracing {label}: decisive p50 {pct(decisive, 50):6.2f} ms, deployed p50 {pct(deployed, 50):6.2f} ms"
            )
    collector.shutdown()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.rounds} rounds x {args.commands} commands each way"
    )
    off_d = statistics.median(d for d, _ in results[False])
    on_d = statistics.median(d for d, _ in results[True])
    off_p = statistics.median(p for _, p in results[False])
    on_p = statistics.median(p for _, p in results[True])
    print(f"{'median of p50s':32} {'off ms':>8} {'on ms':>8} {'on/off':>7}")
    print(f"{'POST -> decisive response':32} {off_d:8.2f} {on_d:8.2f} {on_d / off_d:7.2f}")
    print(f"{'POST -> deployed in projection':32} {off_p:8.2f} {on_p:8.2f} {on_p / off_p:7.2f}")
    print(f"spans exported per command: {statistics.mean(spans_per_command):.1f}")


if __name__ == "__main__":
    main()
