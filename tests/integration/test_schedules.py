"""When deployments run, in the live system: idle pause read from moto's CloudWatch, weekly
schedules that pause and restart, the API, the command words and the details view. Time is the
executor's injected clock, moved by the test; nothing waits for a real hour to pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.infra import found
from tests.integration.conftest import System, running, system_settings
from tests.integration.test_executor_sandbox import aws, sandbox_settings

pytestmark = pytest.mark.integration
MONDAY_0900 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def schedule(system: System, plan_id: str, user: str = "alice") -> dict[str, Any]:
    response = await system.client.get(f"/api/deployments/{plan_id}/schedule", headers=system.auth(user))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def last_action(system: System, plan_id: str, status: str, by: str) -> dict[str, Any] | None:
    plan = await system.plan(plan_id)
    action = plan["details"]["last_action"]
    return plan if plan["status"] == status and action and action["requested_by"] == by else None


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_0900)


@pytest.fixture
async def dry(nats_url: str, database_url: str, clock: Clock) -> AsyncIterator[System]:
    settings = system_settings(nats_url, database_url, schedule_check_seconds=0.1)
    async with running(settings, ports={"executor": {"clock": clock}}) as client:
        yield System(client, settings)


async def test_an_idle_endpoint_is_paused_from_cloudwatch(
    nats_url: str,
    database_url: str,
    moto_url: str,
    clock: Clock,
) -> None:
    settings = sandbox_settings(nats_url, database_url, moto_url, schedule_check_seconds=0.1)
    async with running(settings, ports={"executor": {"clock": clock}}) as client:
        system = System(client, settings)
        said = await system.command("deploy llama 3.1 8b for quiet-bot and pause when idle for 30 minutes", "staging")
        plan = await system.wait_status(said["plan_id"], "deployed", timeout=30)
        assert plan["artifact"]["idle_pause_minutes"] == 30
        view = await schedule(system, said["plan_id"])
        assert view["source"] == "plan" and view["idle_pause_minutes"] == 30
        assert view["idle_check"].startswith("CloudWatch")
        # requests 20 minutes in: 40 minutes after deploying, the last 30 were not all quiet
        cw = aws(moto_url, "cloudwatch")
        dimensions = [
            {"Name": "EndpointName", "Value": "quiet-bot-staging"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
        metric = {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 4.0, "Unit": "None"}
        cw.put_metric_data(
            Namespace="AWS/SageMaker", MetricData=[{**metric, "Timestamp": clock.now + timedelta(minutes=20)}]
        )
        clock.advance(minutes=40)
        # another endpoint's requests do not keep this one awake: another app deploys, gets traffic
        other = await system.command("deploy llama 3.1 8b for busy-bot", "staging")
        await system.wait_status(other["plan_id"], "deployed", timeout=30)
        await system.settled()
        assert (await system.plan(said["plan_id"]))["status"] == "deployed"
        # 60 minutes after the last request
        clock.advance(minutes=40)
        paused = await found(
            lambda: last_action(system, said["plan_id"], "paused", "idle:quiet-bot-staging"),
            what="the idle endpoint paused by its idle rule",
        )
        assert "no invocations for 30 minutes" in paused["details"]["last_action"]["reason"]
        described = aws(moto_url, "sagemaker").list_endpoints()["Endpoints"]
        assert [e["EndpointName"] for e in described] == ["busy-bot-staging"]  # quiet-bot's endpoint is gone
        # no idle rule on busy-bot (staging has no default): it stays
        assert (await system.plan(other["plan_id"]))["status"] == "deployed"
        # the audit log has the pause, by the executor, with its reason
        events = (await client.get(f"/api/audit?plan_id={said['plan_id']}")).json()
        actions = [e for e in events["events"] if e["type"] == "deployment.action"]
        assert actions[-1]["actor"] == "idle:quiet-bot-staging"


async def test_a_schedule_pauses_and_restarts_through_the_guardian(dry: System, clock: Clock) -> None:
    said = await dry.command("deploy llama 3.1 8b for office-bot", "staging")
    await dry.wait_status(said["plan_id"], "deployed")
    body = {"schedule": {"days": "mon-fri", "start": "08:00", "stop": "18:00", "timezone": "Europe/Berlin"}}
    answer = await dry.client.put(f"/api/deployments/{said['plan_id']}/schedule", json=body)
    assert answer.status_code == 202, answer.text
    # the gateway tells the next transition on the real clock: 08:00 or 18:00 in Berlin
    nxt = answer.json()["schedule"]["next"]
    at = datetime.fromisoformat(nxt["at"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert at > datetime.now(UTC) and (at.strftime("%H:%M"), nxt["action"]) in (
        ("08:00", "restart"),
        ("18:00", "pause"),
    )
    # Monday 10:00 Berlin: inside the window, nothing to do
    await dry.settled()
    assert (await dry.plan(said["plan_id"]))["status"] == "deployed"
    # Monday 18:05 Berlin (17:05 UTC): paused by the schedule
    clock.now = datetime(2026, 11, 23, 17, 5, tzinfo=UTC)
    paused = await found(lambda: last_action(dry, said["plan_id"], "paused", "schedule:office-bot-staging"))
    assert "window closed 2026-11-23 17:00 UTC" in paused["details"]["last_action"]["reason"]
    # a person restarts it in the evening: that stands until the next transition
    restart = await dry.client.post(f"/api/deployments/{said['plan_id']}/restart")
    assert restart.status_code == 200, restart.text
    await dry.wait_status(said["plan_id"], "deployed")
    clock.advance(hours=2)
    await dry.settled()
    assert (await dry.plan(said["plan_id"]))["status"] == "deployed"
    # Tuesday 18:00 Berlin pauses it again; Wednesday 08:00 Berlin restarts it, through the guardian
    clock.now = datetime(2026, 11, 24, 17, 1, tzinfo=UTC)
    await found(lambda: last_action(dry, said["plan_id"], "paused", "schedule:office-bot-staging"))
    clock.now = datetime(2026, 11, 25, 7, 1, tzinfo=UTC)
    plan = await found(lambda: last_action(dry, said["plan_id"], "deployed", "schedule:office-bot-staging"))
    assert plan["details"]["operation"] == "restart"
    events = (await dry.client.get(f"/api/audit?plan_id={said['plan_id']}")).json()["events"]
    kinds = [(e["type"], e["data"].get("operation")) for e in events]
    assert ("deployment.requested", "restart") in kinds  # the guardian passed the restart


async def test_a_scheduled_restart_in_prod_waits_for_approvers(dry: System, clock: Clock) -> None:
    said = await dry.command("deploy llama 3.1 8b for prod-office in prod")
    await dry.wait_status(said["plan_id"], "pending_approval")
    decided = await dry.client.post(f"/approvals/{said['plan_id']}/approve", headers=dry.auth("carol"))
    assert decided.status_code == 200, decided.text
    await dry.wait_status(said["plan_id"], "deployed")
    said_again = await dry.command("keep prod-office in prod running weekdays 8-18 UTC")
    assert said_again["action"] == "schedule" and "running weekdays 08:00-18:00 UTC" in said_again["message"]
    clock.now = datetime(2026, 11, 23, 18, 1, tzinfo=UTC)
    await found(lambda: last_action(dry, said["plan_id"], "paused", "schedule:prod-office-prod"))
    clock.now = datetime(2026, 11, 24, 8, 1, tzinfo=UTC)
    waiting = await found(
        lambda: _pending_restart(dry, said["plan_id"]), what="the scheduled restart waiting for approval"
    )
    assert waiting["status"] == "paused"


async def _pending_restart(system: System, plan_id: str) -> dict[str, Any] | None:
    plan = await system.plan(plan_id)
    change = plan["details"]["pending_change"]
    return plan if change and change["operation"] == "restart" else None


async def test_schedules_in_words_the_api_and_its_refusals(dry: System) -> None:
    said = await dry.command("deploy llama 3.1 8b for words-bot in dev")
    await dry.wait_status(said["plan_id"], "deployed")
    plan_id = said["plan_id"]
    set_idle = await dry.command("pause words-bot when idle for 2 hours")
    assert set_idle["action"] == "schedule" and set_idle["plan_id"] == plan_id
    set_window = await dry.command("keep words-bot running mon-fri 9am-5pm America/New_York")
    assert "running mon-fri 09:00-17:00 America/New_York" in set_window["message"]
    await dry.settled()  # the idle rule said first is kept: each command changes only what it says
    view = await schedule(dry, plan_id)
    assert view["source"] == "set" and view["set_by"] == "alice"
    assert view["idle_pause_minutes"] == 120
    assert view["schedule"] == {"days": "mon-fri", "start": "09:00", "stop": "17:00", "timezone": "America/New_York"}
    assert view["idle_check"].startswith("not checked in dry-run")
    listed = (await dry.client.get("/api/schedules")).json()
    assert [s["plan_id"] for s in listed] == [plan_id]
    details = await dry.plan(plan_id)
    assert details["details"]["schedule"]["rules"]["idle_pause_minutes"] == 120
    # bad input: 4xx that says what to fix, and nothing recorded
    bad = {
        "start and stop are both 08:00": {"schedule": {"start": "08:00", "stop": "08:00"}},
        "is not a time zone": {"schedule": {"start": "8", "stop": "18", "timezone": "Mars/Olympus"}},
        "schedule.days: '' is not a list of days": {"schedule": {"days": "", "start": "8", "stop": "18"}},
        "is under 1": {"idle_pause_minutes": 0.5},
        "is not a day": {"schedule": {"days": "mon-funday", "start": "8", "stop": "18"}},
        "not a time of day": {"schedule": {"start": "25:00", "stop": "18"}},
        "not a known field": {"schedule": None, "cron": "* * * * *"},
    }
    for message, body in bad.items():
        answer = await dry.client.put(f"/api/deployments/{plan_id}/schedule", json=body)
        assert answer.status_code == 422 and message in answer.text, (body, answer.text)
    for command, message in {
        "keep words-bot running weekdays 8-8 UTC": "never run",
        "pause words-bot when idle for 20 seconds": "once a minute",
        "keep words-bot running weekdays 8-18 Atlantis/Capital": "not a time zone",
    }.items():
        answer = await dry.client.post("/api/agent/command", json={"command": command})
        assert answer.status_code == 422 and message in answer.text, (command, answer.text)
    viewer = await dry.client.put(f"/api/deployments/{plan_id}/schedule", json={}, headers=dry.auth("vic"))
    assert viewer.status_code == 403
    assert (await dry.client.get("/api/deployments/no-such-plan/schedule")).status_code == 404
    await dry.settled()
    assert (await schedule(dry, plan_id))["idle_pause_minutes"] == 120  # none of that changed anything
    # removed: nothing decides when it runs any more, and the list says so
    removed = await dry.client.delete(f"/api/deployments/{plan_id}/schedule")
    assert removed.status_code == 202 and "no schedule and no idle pause" in removed.json()["message"]
    await found(lambda: _listed_none(dry), what="the schedule list empty after the removal")
    deleted = await dry.client.delete(f"/api/deployments/{plan_id}")
    assert deleted.status_code == 200
    await dry.wait_status(plan_id, "deleted")
    gone = await dry.client.put(f"/api/deployments/{plan_id}/schedule", json={"idle_pause_minutes": 60})
    assert gone.status_code == 409 and "deleted" in gone.text


async def _listed_none(system: System) -> bool:
    return (await system.client.get("/api/schedules")).json() == []
