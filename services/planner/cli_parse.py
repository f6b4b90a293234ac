"""`agentops parse`: the parser on its own, for people and for the scoring script."""

from __future__ import annotations

import json
import sys

from shared.catalog import models
from shared.intent import parse

FIELDS = ("action", "model_id", "app", "env", "budget_usd_per_hour", "instance_count", "instance_type")


def parse_json(command: str) -> dict[str, object]:
    parsed = parse(command, models())
    return parsed.model_dump(include=set(FIELDS))


def main(commands: list[str], jsonl: bool) -> int:
    if jsonl:
        for line in sys.stdin:
            print(json.dumps(parse_json(line.rstrip("\n"))), flush=False)
        return 0
    print(json.dumps(parse_json(" ".join(commands)), indent=2))
    return 0
