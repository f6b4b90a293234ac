"""Every command the dashboard suggests is one the planner understands.

The suggestions are read from the dashboard's own source, so a suggestion added there that the
planner cannot serve (an unknown model, a phrasing it does not parse) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.gateway.lifecycle import lifecycle_request
from shared.events import PlanProposed
from shared.models import Env
from tests.unit.test_planning import plan

SOURCE = Path(__file__).resolve().parents[2] / "frontend" / "src" / "lib" / "suggestions.ts"


def suggestions() -> list[str]:
    block = SOURCE.read_text().split("SUGGESTION_GROUPS", 1)[1].split("\n]\n", 1)[0]
    return re.findall(r"'((?:deploy|set up|launch|provision|spin up|pause|restart|scale)[^']*)'", block)


def test_there_are_at_least_30() -> None:
    assert len(suggestions()) >= 30


@pytest.mark.parametrize("command", [c for c in suggestions() if lifecycle_request(c) is None])
async def test_each_deploy_suggestion_plans(command: str) -> None:
    out = await plan(command, Env.STAGING)
    assert isinstance(out, PlanProposed), out


@pytest.mark.parametrize("command", [c for c in suggestions() if c.split()[0] in ("pause", "restart", "scale")])
def test_each_lifecycle_suggestion_is_understood(command: str) -> None:
    assert lifecycle_request(command) is not None
