"""Cost per deployment and per month, from the audit log (Cost Explorer when billing is configured)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.gateway.costs import parse_cost_explorer
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def cost_once(system: System, plan_id: str, ready: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        cost: dict[str, Any] = (await system.client.get(f"/api/deployments/{plan_id}/cost")).json()
        if ready(cost) or asyncio.get_running_loop().time() > deadline:
            return cost
        await asyncio.sleep(0.05)


async def test_a_running_deployment_accrues_cost_and_a_paused_one_stops(system: System) -> None:
    plan_id = (await system.command("deploy llama-3.1 8B for cost-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    first = await cost_once(system, plan_id, lambda c: c["usd"] > 0)  # the meter runs
    assert first["running"] is True and first["usd"] > 0 and first["usd_per_hour"] > 0
    await system.client.post(f"/api/deployments/{plan_id}/pause")
    await system.wait_status(plan_id, "paused")
    await system.settled()
    paused = (await system.client.get(f"/api/deployments/{plan_id}/cost")).json()
    # A stopped meter charges nothing per hour, so a later read says the same (that the meter
    # stands still as the clock moves is tests/unit/test_costs.py, on a clock it controls).
    later = (await system.client.get(f"/api/deployments/{plan_id}/cost")).json()
    assert paused["running"] is False and paused["usd_per_hour"] == 0
    assert later["usd"] == paused["usd"] >= first["usd"]
    listed = (await system.client.get("/api/deployments")).json()["deployments"]
    assert listed[0]["cost_usd"] == later["usd"]
    month = (await system.client.get("/api/metrics/costs/monthly")).json()
    assert month["estimated"] is True and month["amount"] >= round(later["usd"], 2) - 0.01
    assert (await system.client.get("/api/deployments/nope/cost")).status_code == 404


def test_cost_explorer_answers_are_read_for_amount_and_trend() -> None:
    answer = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"},
                "Total": {"UnblendedCost": {"Amount": "1000.0", "Unit": "USD"}},
                "Estimated": False,
            },
            {
                "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-25"},
                "Total": {"UnblendedCost": {"Amount": "1250.5", "Unit": "USD"}},
                "Estimated": True,
            },
        ]
    }
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    month = parse_cost_explorer(answer, date(2026, 11, 1), now.date(), now)
    assert (month.amount, month.trend, month.percent_change, month.estimated) == (1250.5, "up", 25.1, False)
    assert month.period.start == "2026-11-01"
    empty = parse_cost_explorer({"ResultsByTime": []}, date(2026, 11, 1), now.date(), now)
    assert (empty.amount, empty.trend) == (0.0, "stable")
