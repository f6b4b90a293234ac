"""Budgets through the whole system: set through the API (audited), crossed by a real deployment's
meter, announced once, delivered by the notifier, blocking new spending and pausing the scope's
endpoints with the budget as the actor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.fakes import FakeHttp, serve
from tests.infra import for_service, found, service_app
from tests.integration.conftest import System, running, system_settings
from tests.integration.test_executor_sandbox import sandbox_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def hooks() -> Iterator[FakeHttp]:
    with serve(FakeHttp(routes={"POST /hooks": lambda body: (200, {})})) as fake:
        yield fake


@pytest.fixture
async def system(nats_url: str, database_url: str, hooks: FakeHttp) -> AsyncIterator[System]:
    target = {"name": "ops", "url": f"{hooks.url}/hooks", "secret": "s3cret", "events": ["budget.threshold_crossed"]}
    settings = system_settings(
        nats_url,
        database_url,
        budget_check_seconds=0.2,
        spend_cache_seconds=0,
        webhooks=json.dumps([target]),
    )
    # every service, and the notifier (which `running` leaves out) with the settings' targets
    async with running(settings) as client, service_app("notifier", for_service(settings, "notifier")):
        yield System(client, settings)


def audited(database_url: str, event_type: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT payload FROM audit_events WHERE type = %s ORDER BY seq", (event_type,)).fetchall()
    return [r[0] for r in rows]


async def until(check: Any, timeout: float = 20.0) -> Any:
    return await found(check, timeout)


async def test_a_budget_past_its_thresholds_notifies_blocks_and_pauses(
    system: System, database_url: str, hooks: FakeHttp
) -> None:
    plan_id = (await system.command("deploy qwen 2.5 7b for budget-bot", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    # a budget the running endpoint is past within a second: $0.0001 a month
    thresholds = [{"percent": 50}, {"percent": 100, "action": "pause"}]
    body = {"monthly_usd": 0.0001, "thresholds": thresholds}
    refused = await system.client.put("/api/budgets/env:staging", json=body)  # alice is a deployer
    assert refused.status_code == 403
    answer = await system.client.put("/api/budgets/env:staging", json=body, headers=system.auth("root"))
    assert answer.status_code == 200, answer.text

    paused = await system.wait_status(plan_id, "paused", timeout=20)
    assert paused["details"]["last_action"]["requested_by"] == "budget:env:staging"
    crossings = await until(
        lambda: (
            len(audited(database_url, "budget.threshold_crossed")) == 2
            and audited(database_url, "budget.threshold_crossed")
        )
    )
    assert sorted(c["data"]["threshold"]["action"] for c in crossings) == ["notify", "pause"]
    pause = next(c for c in crossings if c["data"]["threshold"]["action"] == "pause")
    assert pause["data"]["paused"] == [plan_id] and pause["actor"] == "guardian"
    actions = audited(database_url, "deployment.action")
    assert [a["actor"] for a in actions if a["plan_id"] == plan_id] == ["budget:env:staging"]
    await until(lambda: len([r for r in hooks.requests if r.path == "/hooks"]) == 2)  # the notifier delivered both
    assert "budget env:staging is past 100%" in " ".join(r.body["text"] for r in hooks.requests)

    restart = await system.client.post(f"/api/deployments/{plan_id}/restart")
    assert restart.status_code == 200
    blocked = await _wait_rejection(system, plan_id)
    assert "env:staging budget" in blocked
    again = await system.command("deploy qwen 2.5 7b for budget-bot-2", env="staging")
    assert again["status"] == "validation_failed"
    assert any("env:staging budget" in e for e in again["validation_errors"])
    dev = await system.command("deploy qwen 2.5 7b for budget-bot", env="dev")  # another env's budget
    await system.wait_status(dev["plan_id"], "deployed")

    listed = (await system.client.get("/api/budgets")).json()
    (staging,) = [b for b in listed if b["scope"] == "env:staging"]
    assert staging["set_by"] == "root" and staging["spend_usd"] >= 0.0001
    assert [t["action"] for t in staging["crossed"]] == ["notify", "pause"]
    assert len(audited(database_url, "budget.threshold_crossed")) == 2  # once each, however often checked


async def _wait_rejection(system: System, plan_id: str) -> str:
    async def rejection() -> str | None:
        plan = await system.plan(plan_id)
        return " ".join(plan["details"]["last_rejection"]) or None

    return str(await found(rejection, 15, "the restart's refusal"))


@pytest.mark.parametrize(
    ("scope", "body", "says"),
    [
        ("env:staging", {"monthly_usd": 0}, "greater than 0"),
        ("env:staging", {"monthly_usd": -10}, "greater than 0"),
        ("env:staging", {"monthly_usd": 10, "thresholds": [{"percent": 120}]}, "less than or equal to 100"),
        ("env:staging", {"monthly_usd": 10, "thresholds": [{"percent": -5}]}, "greater than 0"),
        ("staging", {"monthly_usd": 10}, "is not a budget scope"),
    ],
)
async def test_a_budget_that_means_nothing_is_a_422(
    system: System, scope: str, body: dict[str, Any], says: str
) -> None:
    answer = await system.client.put(f"/api/budgets/{scope}", json=body, headers=system.auth("root"))
    assert answer.status_code == 422 and says in answer.text, answer.text


def queue_bill(moto_url: str, env_groups: dict[str, float], app_groups: dict[str, float]) -> None:
    """What moto's Cost Explorer answers, in the order the two grouped queries first arrive (env,
    then app), in Cost Explorer's wire format (`tag$value` group keys)."""

    def answer(tag: str, groups: dict[str, float]) -> dict[str, Any]:
        return {
            "ResultsByTime": [
                {
                    "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-28"},
                    "Total": {},
                    "Groups": [
                        {"Keys": [f"{tag}${value}"], "Metrics": {"UnblendedCost": {"Amount": str(usd), "Unit": "USD"}}}
                        for value, usd in groups.items()
                    ],
                    "Estimated": True,
                }
            ]
        }

    results = [answer("agentops:env", env_groups), answer("agentops:app", app_groups)]
    response = httpx.post(f"{moto_url}/moto-api/static/ce/cost-and-usage-results", json={"results": results})
    assert response.status_code == 201, response.text


async def test_what_aws_billed_counts_when_it_is_more_than_the_meter(
    nats_url: str, database_url: str, moto_url: str, hooks: FakeHttp
) -> None:
    # AWS billed $80 this month to an app the meter has seen nothing of (made before AgentOps
    # metered it, storage, anything under its tags), and $5 untagged that no budget owns
    queue_bill(moto_url, {"staging": 80.0, "": 5.0}, {"billed-bot": 80.0, "": 5.0})
    target = {"name": "ops", "url": f"{hooks.url}/hooks", "secret": "s3cret", "events": ["budget.threshold_crossed"]}
    settings = sandbox_settings(
        nats_url, database_url, moto_url, budget_check_seconds=0.2, spend_cache_seconds=0, webhooks=json.dumps([target])
    )
    async with running(settings) as client, service_app("notifier", for_service(settings, "notifier")):
        system = System(client, settings)
        answer = await client.put("/api/budgets/app:billed-bot", json={"monthly_usd": 100}, headers=system.auth("root"))
        assert answer.status_code == 200, answer.text

        async def listed() -> list[dict[str, Any]]:
            return (await client.get("/api/budgets")).json()  # type: ignore[no-any-return]

        [view] = await until(listed)  # once the log has the budget
        assert (view["billed_usd"], view["metered_usd"], view["spend_usd"]) == (80.0, 0.0, 80.0)
        assert "Cost Explorer" in view["basis"] and "24 hours" in view["basis"]
        # past 50 % of the spend, and 80 % of the forecast (80 billed, nothing billing now)
        assert view["forecast_usd"] == 80.0
        assert [(t["percent"], t["basis"]) for t in view["crossed"]] == [(50, "actual"), (80, "forecast")]
        # the guardian acts on the same figure: both notify thresholds, each announced once
        crossed = await until(
            lambda: (
                len(audited(database_url, "budget.threshold_crossed")) == 2
                and audited(database_url, "budget.threshold_crossed")
            )
        )
        assert {(c["data"]["scope"], c["data"]["spend_usd"]) for c in crossed} == {("app:billed-bot", 80.0)}
        await until(lambda: len([r for r in hooks.requests if r.path == "/hooks"]) == 2)  # delivered
