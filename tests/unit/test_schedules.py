"""When deployments run: the rules (shared/schedules.py), the words that say them, and the
executor's keeper driven through its ports with the clock and the invocation counts injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.executor.lifecycle import Deployed
from services.executor.schedules import Keeper, RuleRecord
from shared.catalog import models
from shared.events import DeploymentAction, Event, ScheduleSet, ScheduleSetData
from shared.identity import may_produce
from shared.intent import parse
from shared.kv import MemoryStore
from shared.models import Action, Env, SageMakerDeploymentConfig
from shared.schedules import Rules, Schedule, days_of, last_transition, merged, next_transition, transitions, wanted

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OFFICE = Schedule(days="mon-fri", start="08:00", stop="18:00", timezone="UTC")


def test_days_read_as_cron_and_as_words() -> None:
    assert days_of("mon-fri") == days_of("1-5") == days_of("weekdays") == (0, 1, 2, 3, 4)
    assert days_of("sat,sun") == days_of("6,0") == days_of("6-7") == days_of("weekends") == (5, 6)
    assert days_of("*") == days_of("daily") == tuple(range(7))
    assert days_of("Tuesday, thu") == (1, 3)
    for bad in ("fri-mon", "mon-funday", "8", "mon--fri"):
        with pytest.raises(ValueError):
            days_of(bad)


def test_the_window_and_its_transitions() -> None:
    assert wanted(OFFICE, MONDAY) == "running"
    assert last_transition(OFFICE, MONDAY) == (MONDAY.replace(hour=8), "restart")
    assert next_transition(OFFICE, MONDAY) == (MONDAY.replace(hour=18), "pause")
    friday_night = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    assert wanted(OFFICE, friday_night) == "paused"
    assert next_transition(OFFICE, friday_night) == (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), "restart")
    week = transitions(OFFICE, MONDAY.replace(hour=0), MONDAY.replace(hour=0) + timedelta(days=7))
    assert [w for _, w in week] == ["restart", "pause"] * 5


def test_an_overnight_window_runs_into_the_next_day() -> None:
    nights = Schedule(days="fri", start="22:00", stop="06:00")
    assert wanted(nights, datetime(2026, 11, 27, 23, 0, tzinfo=UTC)) == "running"  # Friday night
    assert wanted(nights, datetime(2026, 11, 28, 5, 59, tzinfo=UTC)) == "running"  # Saturday morning
    assert wanted(nights, datetime(2026, 11, 28, 6, 1, tzinfo=UTC)) == "paused"


def test_local_time_follows_daylight_saving() -> None:
    berlin = Schedule(days="*", start="08:00", stop="18:00", timezone="Europe/Berlin")
    winter = last_transition(berlin, datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # before the change
    summer = last_transition(berlin, datetime(2026, 3, 30, 12, 0, tzinfo=UTC))  # after it
    assert winter == (datetime(2026, 3, 28, 7, 0, tzinfo=UTC), "restart")
    assert summer == (datetime(2026, 3, 30, 6, 0, tzinfo=UTC), "restart")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"start": "08:00", "stop": "08:00"}, "would never run"),
        ({"days": "", "start": "8", "stop": "18"}, "is not a list of days"),
        ({"start": "8", "stop": "18", "timezone": "Mars/Olympus"}, "is not a time zone"),
        ({"start": "8", "stop": "18", "timezone": "../../etc/passwd"}, "is not a time zone"),
        ({"start": "24:30", "stop": "18"}, "not a time of day"),
        ({"start": "8pm", "stop": "18"}, "not a time of day"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused(fields: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Schedule(**fields)


def test_idle_minutes_under_the_metric_resolution_are_refused() -> None:
    for minutes, says in ((0, "is under 1"), (0.5, "is under 1"), (90.5, "whole number"), (60 * 24 * 31, "30 days")):
        with pytest.raises(ValueError, match=says):
            Rules(idle_pause_minutes=minutes)  # type: ignore[arg-type]
    assert Rules(idle_pause_minutes=1).idle_pause_minutes == 1


def test_a_rule_said_alone_keeps_the_other() -> None:
    both = Rules(schedule=OFFICE, idle_pause_minutes=60)
    assert merged(both, Rules(idle_pause_minutes=15), ["idle_pause_minutes"]) == Rules(
        schedule=OFFICE, idle_pause_minutes=15
    )
    assert merged(both, Rules(), ["schedule", "idle_pause_minutes"]) == Rules()


@pytest.mark.parametrize(
    ("command", "app", "env", "idle", "schedule"),
    [
        ("pause chatbot-x when idle for 2 hours", "chatbot-x", None, 120, None),
        ("stop summarizer after 45 minutes without traffic", "summarizer", None, 45, None),
        ("turn legal-search in prod off if unused for 1.5 h", "legal-search", "prod", 90, None),
        ("keep chatbot-x running weekdays 8-18 UTC", "chatbot-x", None, None, ("weekdays", "08:00", "18:00", "UTC")),
        (
            "keep the ops-bot in staging up mon-fri from 9am to 5:30pm america/new_york",
            "ops-bot",
            "staging",
            None,
            ("mon-fri", "09:00", "17:30", "America/New_York"),
        ),
        (
            "run night-batch only between 22:00 and 06:00 on weekends Europe/Berlin",
            "night-batch",
            None,
            None,
            ("weekends", "22:00", "06:00", "Europe/Berlin"),
        ),
        ("schedule qa-bot for tue,thu 10-16", "qa-bot", None, None, ("tue,thu", "10:00", "16:00", "UTC")),
    ],
)
def test_the_words_for_when_it_runs(
    command: str, app: str, env: str | None, idle: int | None, schedule: tuple[str, ...] | None
) -> None:
    said = parse(command, models())
    assert (said.action, said.app, said.env, said.idle_minutes, said.conflicts) == ("schedule", app, env, idle, [])
    got = (
        (said.schedule.days, said.schedule.start, said.schedule.stop, said.schedule.timezone) if said.schedule else None
    )
    assert got == schedule


def test_a_deploy_may_carry_its_idle_rule_but_not_a_schedule() -> None:
    said = parse("deploy qwen 2.5 7b for search-bot in dev, pause after an hour idle", models())
    assert (said.action, said.app, said.idle_minutes, said.conflicts) == ("deploy", "search-bot", 60, [])
    refused = parse("deploy mistral 7b for chatbot-x running weekdays 8-18", models())
    assert refused.conflicts and "deploy it first" in refused.conflicts[0]
    # numbers in the rule are not counts, names or a second deployment
    assert (
        parse("deploy llama 3.1 8b for chatbot-x and pause when idle for 30 minutes", models()).instance_count is None
    )
    for bad, says in (
        ("pause chatbot-x when idle for 20 seconds", "once a minute"),
        ("keep chatbot-x running weekdays 9-9 utc", "never run"),
        ("keep chatbot-x running weekdays 8-18 Atlantis/Capital", "not a time zone"),
    ):
        assert any(says in c for c in parse(bad, models()).conflicts), bad


def test_only_the_executor_idle_and_schedule_actions_are_its_own() -> None:
    def data(action: str, by: str) -> dict[str, str]:
        return {"action": action, "requested_by": by}

    assert may_produce("executor", "deployment.action", data("pause", "idle:x-staging")) is None
    assert may_produce("executor", "deployment.action", data("pause", "schedule:x-staging")) is None
    assert may_produce("executor", "deployment.action", data("restart", "schedule:x-staging")) is None
    for action, by in (("restart", "idle:x"), ("delete", "schedule:x"), ("scale", "schedule:x"), ("pause", "alice")):
        assert may_produce("executor", "deployment.action", data(action, by)) is not None
    assert may_produce("executor", "schedule.set", {}) is not None  # people set schedules, through the gateway


# ---- the keeper ------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def config(endpoint: str = "bot-staging", idle: int | None = None) -> SageMakerDeploymentConfig:
    return SageMakerDeploymentConfig(
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        endpoint_name=endpoint,
        instance_type="ml.g6.xlarge",
        instance_count=1,
        budget_usd_per_hour=15,
        idle_pause_minutes=idle,
    )


def live(since: datetime, idle: int | None = None, **fields: object) -> Deployed:
    return Deployed(
        plan_id="p1", env=Env.STAGING, config=config(idle=idle), endpoint_live=True, settled=True, since=since, **fields
    )


class Harness:
    def __init__(self, now: datetime, served: float | None = 0.0) -> None:
        self.clock = Clock(now)
        self.records: MemoryStore[Deployed] = MemoryStore()
        self.sent: list[Event] = []
        self.asked: list[tuple[str, datetime, datetime]] = []
        self.served = served

        async def publish(event: Event) -> None:
            self.sent.append(event)

        async def invocations(endpoint: str, since: datetime, until: datetime) -> float:
            self.asked.append((endpoint, since, until))
            return self.served or 0.0

        self.keeper = Keeper(
            self.records, MemoryStore[RuleRecord](), publish, invocations if served is not None else None, self.clock
        )

    async def set(self, rules: Rules, fields: list[str] | None = None) -> None:
        data = ScheduleSetData(
            endpoint_name="bot-staging",
            rules=rules,
            set_by="alice",
            fields=fields or ["schedule", "idle_pause_minutes"],
        )  # type: ignore[arg-type]
        await self.keeper.on_set(ScheduleSet(plan_id="p1", actor="alice", data=data))

    async def check(self) -> list[DeploymentAction]:
        return await self.keeper.check_once()


async def test_idle_is_judged_on_the_last_minutes_after_a_full_idle_time_in_service() -> None:
    h = Harness(MONDAY, served=3.0)
    await h.records.put("p1", live(MONDAY, idle=30))
    h.clock.now = MONDAY + timedelta(minutes=29)
    assert await h.check() == [] and h.asked == []  # not in service for 30 minutes yet: not asked
    h.clock.now = MONDAY + timedelta(minutes=45)
    assert await h.check() == []  # requests in the window
    assert h.asked == [("bot-staging", MONDAY + timedelta(minutes=15), MONDAY + timedelta(minutes=45))]
    h.served = 0.0
    [pause] = await h.check()
    assert (pause.data.action, pause.data.requested_by, pause.actor) == (
        Action.PAUSE,
        "idle:bot-staging",
        "idle:bot-staging",
    )
    assert "no invocations for 30 minutes" in (pause.data.reason or "")
    again = await h.check()  # still live until the pause is carried out: the same event, deduplicated downstream
    assert [a.id for a in again] == [pause.id]
    await h.records.put("p1", live(MONDAY, idle=30).model_copy(update={"endpoint_live": False, "paused": True}))
    assert await h.check() == []


async def test_a_rule_set_replaces_the_plans_own_and_dry_run_is_never_idle() -> None:
    h = Harness(MONDAY + timedelta(hours=3))
    await h.records.put("p1", live(MONDAY, idle=None))
    assert await h.check() == []  # no rule
    await h.set(Rules(idle_pause_minutes=60), ["idle_pause_minutes"])
    assert len(await h.check()) == 1
    await h.set(Rules())  # removed: the plan's own rule does not come back either
    h2 = Harness(MONDAY + timedelta(hours=3))
    await h2.records.put("p1", live(MONDAY, idle=60))
    await h2.set(Rules(), ["schedule", "idle_pause_minutes"])
    assert await h2.check() == []
    dry = Harness(MONDAY + timedelta(hours=3), served=None)
    await dry.records.put("p1", live(MONDAY, idle=60))
    assert await dry.check() == []


async def test_each_transition_is_acted_on_once_and_a_persons_change_stands() -> None:
    h = Harness(MONDAY)
    await h.records.put("p1", live(MONDAY - timedelta(hours=2)))
    await h.set(Rules(schedule=OFFICE), ["schedule"])
    assert await h.check() == []  # inside the window: nothing
    h.clock.now = MONDAY.replace(hour=18, minute=1)
    [pause] = await h.check()
    assert (pause.data.action, pause.data.requested_by) == (Action.PAUSE, "schedule:bot-staging")
    assert "window closed 2026-11-23 18:00 UTC" in (pause.data.reason or "")
    await h.records.put("p1", live(MONDAY).model_copy(update={"endpoint_live": False, "paused": True}))
    # someone restarts it at 19:00: the 18:00 pause is not repeated
    await h.records.put("p1", live(MONDAY.replace(hour=19)))
    h.clock.now = MONDAY.replace(hour=20)
    assert await h.check() == []
    # Tuesday 18:00 pauses it; Wednesday 08:00 asks for the restart (the guardian decides it)
    h.clock.now = MONDAY.replace(day=24, hour=18, minute=5)
    assert [a.data.action for a in await h.check()] == [Action.PAUSE]
    await h.records.put("p1", live(MONDAY).model_copy(update={"endpoint_live": False, "paused": True}))
    h.clock.now = MONDAY.replace(day=25, hour=8, minute=2)
    [restart] = await h.check()
    assert (restart.data.action, restart.data.requested_by) == (Action.RESTART, "schedule:bot-staging")
    assert await h.check() == []  # once


async def test_a_deleted_or_failed_deployment_is_left_alone() -> None:
    h = Harness(MONDAY.replace(day=25, hour=8, minute=2))
    await h.records.put("p1", live(MONDAY).model_copy(update={"endpoint_live": False, "deleted": True}))
    await h.set(Rules(schedule=OFFICE, idle_pause_minutes=5))
    assert await h.check() == []
    # a plan that failed (not paused) is not restarted by a schedule
    await h.records.put("p1", live(MONDAY).model_copy(update={"endpoint_live": False}))
    assert await h.check() == []


async def test_a_window_set_before_the_endpoint_exists_keeps_the_plans_own_idle_rule() -> None:
    h = Harness(MONDAY)
    await h.set(Rules(schedule=OFFICE), ["schedule"])  # the plan still waits for approval: no record
    record = live(MONDAY, idle=45)
    await h.records.put("p1", record)
    assert await h.keeper.rules_of("p1", record) == Rules(schedule=OFFICE, idle_pause_minutes=45)
    await h.set(Rules(idle_pause_minutes=10), ["idle_pause_minutes"])
    assert await h.keeper.rules_of("p1", record) == Rules(schedule=OFFICE, idle_pause_minutes=10)


@pytest.mark.parametrize(
    ("command", "action", "count"),
    [
        ("scale chatbot-x from 2 to 4 instances", "scale", 4),
        ("scale chatbot-x up from 1 to 3", "scale", 3),
        ("deploy llama 3.1 8b for bot between 2 and 4 instances", "deploy", 4),
        ("deploy llama 3.1 8b for x with 2-3 replicas", "deploy", 3),
    ],
)
def test_a_range_of_counts_is_not_a_window_of_hours(command: str, action: str, count: int) -> None:
    said = parse(command, models())
    assert (said.action, said.instance_count, said.schedule, said.conflicts) == (action, count, None, [])


def test_words_that_ask_another_action_to_wait_for_idleness_are_refused_not_obeyed() -> None:
    for command in ("delete chatbot-x when idle for 2 hours", "scale chatbot-x to 2 weekdays 8-18 UTC"):
        said = parse(command, models())
        assert said.conflicts and "only pauses and restarts" in said.conflicts[0], command
