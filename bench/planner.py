"""Parse + retrieve + plan in process with the rules planner, per command of the eval set.

Baseline in the same run: parsing the command text alone (the grammar), so the ratio shows what
retrieval and sizing add. Run: `make bench` or `.venv/bin/python -m bench.planner`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from pathlib import Path

from services.planner.app import CachedCitations
from services.planner.planning import plan_command
from services.planner.retrieval import Bm25Retriever, load_passages
from shared import catalog
from shared.events import IntentReceived, IntentReceivedData
from shared.intent import parse
from shared.settings import Settings

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "intents.jsonl"
ROUNDS = 30


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def main() -> None:
    commands = [json.loads(line)["command"] for line in EVAL.open() if line.strip()]
    models, instances, settings = catalog.models(), catalog.instances(), Settings()
    cite = CachedCitations(Bm25Retriever(load_passages()), settings.retrieval_top_k)
    events = [
        IntentReceived(plan_id=f"b{i}", actor="bench", data=IntentReceivedData(command=c, user_id="bench"))
        for i, c in enumerate(commands)
    ]
    for event in events:  # warm-up: imports, regex compilation, the citation cache
        await plan_command(event, models, instances, settings, cite)
    full, bare = [], []
    for _ in range(ROUNDS):
        for event in events:
            t0 = time.perf_counter()
            await plan_command(event, models, instances, settings, cite)
            t1 = time.perf_counter()
            parse(event.data.command, models)
            t2 = time.perf_counter()
            full.append((t1 - t0) * 1000)
            bare.append((t2 - t1) * 1000)
    cold = Bm25Retriever(load_passages())
    uncached = []
    for c in commands:
        t0 = time.perf_counter()
        cold.search_sync(c, 3)
        uncached.append((time.perf_counter() - t0) * 1000)
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}")
    print(f"planner (rules) over {len(commands)} eval commands x {ROUNDS} rounds:")
    print(f"  parse+retrieve+plan  p50 {pct(full, 50):.3f} ms  p99 {pct(full, 99):.3f} ms")
    print(f"  parse alone          p50 {pct(bare, 50):.3f} ms  p99 {pct(bare, 99):.3f} ms")
    print(f"  ratio to parse alone p50 {pct(full, 50) / pct(bare, 50):.1f}x")
    print(f"  one BM25 query without the citation cache: p50 {pct(uncached, 50):.3f} ms")


if __name__ == "__main__":
    asyncio.run(main())
