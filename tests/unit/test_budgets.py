"""Budgets that act: the rules (shared/budgets.py) and the guardian's keeper driven through its
ports, with the month's spend and the clock injected (no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.guardian.budgeting import BudgetRecord, Budgets
from shared.budgets import Budget, Standing, Threshold, blocking, crossed, hours_left, standing
from shared.events import BudgetSet, BudgetSetData, BudgetThresholdCrossed, DeploymentAction, Event
from shared.kv import MemoryStore
from shared.models import Action, Env

NOV = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_the_forecast_runs_the_current_rate_to_the_end_of_the_month() -> None:
    assert hours_left(NOV) == 10 * 24 + 12  # 20 Nov 12:00 to 1 Dec 00:00
    s = standing(100.0, 2.0, NOV)
    assert s.forecast_usd == 100.0 + 2.0 * 252


def test_each_threshold_is_judged_on_its_basis() -> None:
    budget = Budget(scope="env:prod", monthly_usd=1000)
    assert [t.key for t in budget.thresholds] == ["50:actual:notify", "80:forecast:notify", "100:actual:block"]
    assert crossed(budget, Standing(400, 0, 400)) == []
    assert [t.percent for t in crossed(budget, Standing(400, 2, 900))] == [80]  # the forecast is past 80 %
    assert [t.percent for t in crossed(budget, Standing(1000, 0, 1000))] == [50, 80, 100]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"monthly_usd": 0}, "greater than 0"),
        ({"monthly_usd": -5}, "greater than 0"),
        ({"monthly_usd": 10, "thresholds": [{"percent": 150}]}, "less than or equal to 100"),
        ({"monthly_usd": 10, "thresholds": [{"percent": -1}]}, "greater than 0"),
        ({"monthly_usd": 10, "thresholds": [{"percent": 50}, {"percent": 50}]}, "twice"),
        ({"scope": "prod", "monthly_usd": 10}, "should match pattern"),
    ],
)
def test_a_budget_that_means_nothing_is_refused(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Budget.model_validate({"scope": "env:prod", **fields})


def test_a_blocking_threshold_names_the_budget_for_its_env_and_its_app() -> None:
    budgets = {
        "env:prod": Budget(scope="env:prod", monthly_usd=100),
        "app:bot": Budget(scope="app:bot", monthly_usd=10, thresholds=[Threshold(percent=90, action="pause")]),
    }
    over_app = {"env:prod": Standing(20, 0, 20), "app:bot": Standing(9.5, 0, 9.5)}
    (finding,) = blocking(budgets, over_app, Env.PROD, "bot")
    assert (
        finding.code == "BUDGET_BLOCKED"
        and "app:bot" in finding.message
        and "PUT /api/budgets/app:bot" in finding.message
    )
    assert blocking(budgets, over_app, Env.PROD, "other-bot") == []
    assert blocking(budgets, {"env:prod": Standing(99, 5, 2000)}, Env.PROD, "x") == []  # notify only below 100 %


class Published(list[Event]):
    async def __call__(self, event: Event) -> None:
        self.append(event)


class World:
    """The spend the keeper reads, the live plans it would pause, and the time: all set by the test."""

    def __init__(self) -> None:
        self.now = NOV
        self.standings: dict[str, Standing] = {}
        self.live = {"env:staging": ["p1", "p2"]}

    async def standings_of(self) -> dict[str, Standing]:
        return self.standings

    async def live_in(self, scope: str) -> list[str]:
        return self.live.get(scope, [])


def keeper(world: World, published: Published, initial: dict[str, float] | None = None) -> Budgets:
    store: MemoryStore[BudgetRecord] = MemoryStore()
    return Budgets(store, published, world.standings_of, world.live_in, initial, clock=lambda: world.now)


def budget_set(scope: str, budget: Budget | None) -> BudgetSet:
    return BudgetSet(plan_id="budget", actor="root", data=BudgetSetData(scope=scope, budget=budget, set_by="root"))


async def test_each_action_acts_once_per_threshold_per_month() -> None:
    world, published = World(), Published()
    budgets = keeper(world, published)
    thresholds = [
        Threshold(percent=50),
        Threshold(percent=80, action="block"),
        Threshold(percent=100, action="pause"),
    ]
    await budgets.on_set(budget_set("env:staging", Budget(scope="env:staging", monthly_usd=100, thresholds=thresholds)))
    world.standings = {"env:staging": standing(60, 0.0, world.now)}
    (notify,) = await budgets.check_once()
    assert notify.data.threshold.action == "notify" and notify.data.spend_usd == 60
    assert await budgets.blocking(Env.STAGING, "any") == []
    assert await budgets.check_once() == []  # the same crossing is announced once

    world.standings = {"env:staging": standing(85, 0.0, world.now)}
    (block,) = await budgets.check_once()
    assert block.data.threshold.action == "block"
    budgets._cached = None
    assert [f.code for f in await budgets.blocking(Env.STAGING, "any")] == ["BUDGET_BLOCKED"]

    published.clear()
    world.standings = {"env:staging": standing(101, 0.0, world.now)}
    announced = await budgets.check_once()
    pauses = [e for e in published if isinstance(e, DeploymentAction)]
    assert [e.plan_id for e in pauses] == ["p1", "p2"]
    assert all(e.data.action is Action.PAUSE and e.actor == "budget:env:staging" for e in pauses)
    assert [e.data.paused for e in announced] == [["p1", "p2"]]
    assert await budgets.check_once() == []

    world.now = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)  # a new month: the thresholds count again
    assert len(await budgets.check_once()) == 3
    crossing_ids = [e.id for e in published if isinstance(e, BudgetThresholdCrossed)]
    assert len(crossing_ids) == len(set(crossing_ids))


async def test_budgets_come_from_the_setting_until_set_or_removed() -> None:
    world, published = World(), Published()
    budgets = keeper(world, published, initial={"env:prod": 500.0})
    assert (await budgets.budgets())["env:prod"].monthly_usd == 500
    await budgets.on_set(budget_set("env:prod", Budget(scope="env:prod", monthly_usd=900)))
    assert (await budgets.budgets())["env:prod"].monthly_usd == 900
    await budgets.on_set(budget_set("env:prod", None))
    assert await budgets.budgets() == {}


# ---- what AWS billed (shared/billing.py) ----------------------------------------------


def test_the_cost_explorer_query_is_one_botocore_accepts() -> None:
    import boto3
    from botocore.validate import ParamValidator

    from shared.billing import month_query

    query = month_query(NOV, "agentops:env")
    shape = (
        boto3.client("ce", region_name="us-east-1").meta.service_model.operation_model("GetCostAndUsage").input_shape
    )
    report = ParamValidator().validate(query, shape)
    assert not report.has_errors(), report.generate_report()
    assert query["TimePeriod"] == {"Start": "2026-11-01", "End": "2026-11-21"}  # End is exclusive


def test_billed_groups_become_scopes_and_the_larger_figure_counts() -> None:
    from shared.billing import by_scope, with_billed

    answer = {
        "ResultsByTime": [
            {
                "Groups": [
                    {
                        "Keys": ["agentops:app$chatbot-x"],
                        "Metrics": {"UnblendedCost": {"Amount": "40.5", "Unit": "USD"}},
                    },
                    {"Keys": ["agentops:app$"], "Metrics": {"UnblendedCost": {"Amount": "9", "Unit": "USD"}}},
                ]
            }
        ]
    }
    billed = by_scope(answer, "app")
    assert billed == {"app:chatbot-x": 40.5}  # untagged spend belongs to no scope
    meter = {"app:chatbot-x": standing(30.0, 1.0, NOV), "env:prod": standing(500.0, 2.0, NOV)}
    combined = with_billed(meter, billed | {"env:prod": 100.0}, NOV)
    assert combined["app:chatbot-x"] == standing(40.5, 1.0, NOV)  # the bill is more: it counts, at the meter's rate
    assert combined["env:prod"] == meter["env:prod"]  # the meter is more (the bill lags): it counts


async def test_an_unreadable_bill_leaves_the_meter_and_says_why() -> None:
    from shared.billing import Billed

    class Refusing:
        calls = 0

        def get_cost_and_usage(self, **_: object) -> dict[str, object]:
            Refusing.calls += 1
            raise PermissionError("AccessDeniedException: ce:GetCostAndUsage")

    billed = Billed(Refusing(), cache_seconds=3600)
    assert await billed(NOV) == {}
    assert billed.problem is not None and "could not be read (PermissionError)" in billed.problem
