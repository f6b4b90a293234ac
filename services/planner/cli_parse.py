"""`agentops parse`: the parser on its own, for people and for the scoring script."""

from __future__ import annotations

import json
import sys

from shared.catalog import models
from shared.intent import parse

FIELDS = ("action", "model_id", "app", "env", "budget_usd_per_hour", "instance_count", "instance_type")
# shown to people when the command says them (the scoring script's lines keep FIELDS only)
EXTRA = ("hub_id", "traffic", "traffic_percent", "traffic_wait_seconds", "conflicts")


def parse_json(command: str) -> dict[str, object]:
    parsed = parse(command, models())
    return parsed.model_dump(include=set(FIELDS))


def main(commands: list[str], jsonl: bool) -> int:
    if jsonl:
        for line in sys.stdin:
            print(json.dumps(parse_json(line.rstrip("\n"))), flush=False)
        return 0
    parsed = parse(" ".join(commands), models())
    said = {k: v for k, v in parsed.model_dump(include=set(EXTRA)).items() if v}
    print(json.dumps({**parsed.model_dump(include=set(FIELDS)), **said}, indent=2))
    return 0
