"""The cost estimate that the guardian's budget check and the cost API rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.costs import CostEvent, deployment_cost, meter, month_start

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def requested(at: datetime, usd_per_hour: float) -> CostEvent:
    return CostEvent("deployment.requested", at, {"estimated_usd_per_hour": usd_per_hour})


def status(at: datetime, value: str) -> CostEvent:
    return CostEvent("deployment.status", at, {"status": value})


def test_two_hours_on_two_instances_at_one_fifty_costs_six_dollars() -> None:
    events = [
        requested(T0, 2 * 1.5),
        status(T0, "deploying"),
        status(T0 + timedelta(minutes=10), "deployed"),
        status(T0 + timedelta(hours=2), "deleted"),
    ]
    assert deployment_cost(events, T0 - timedelta(days=1), T0 + timedelta(days=1)) == 6.0


def test_pause_stops_the_meter_and_restart_starts_it_again() -> None:
    events = [
        requested(T0, 4.0),
        status(T0, "deploying"),
        status(T0 + timedelta(hours=1), "paused"),
        requested(T0 + timedelta(hours=5), 4.0),
        status(T0 + timedelta(hours=5), "deploying"),
        status(T0 + timedelta(hours=6), "deployed"),
    ]
    m = meter(events)
    assert m.running
    assert m.usd(T0, T0 + timedelta(hours=7)) == 4.0 + 8.0  # 1 h, paused 4 h, then 2 h


def test_scale_changes_the_rate_from_its_moment() -> None:
    events = [
        requested(T0, 1.0),
        status(T0, "deployed"),
        requested(T0 + timedelta(hours=1), 3.0),  # scaled from 1 to 3 instances
        status(T0 + timedelta(hours=2), "deleted"),
    ]
    assert deployment_cost(events, T0, T0 + timedelta(hours=3)) == 4.0


def test_only_the_window_counts() -> None:
    start = month_start(T0)
    events = [requested(start - timedelta(hours=3), 2.0), status(start - timedelta(hours=3), "deployed")]
    assert deployment_cost(events, start, start + timedelta(hours=1)) == 2.0


def test_failed_before_running_costs_nothing_beyond_its_attempt() -> None:
    events = [requested(T0, 10.0), status(T0, "deploying"), status(T0 + timedelta(minutes=6), "failed")]
    assert deployment_cost(events, T0, T0 + timedelta(days=1)) == 1.0


def test_an_update_bills_the_new_rate_and_a_rollback_returns_to_the_old_one() -> None:
    events = [
        requested(T0, 2.0),
        status(T0, "deploying"),
        status(T0, "deployed"),
        requested(T0 + timedelta(hours=1), 5.0),  # the update is priced at its new configuration
        status(T0 + timedelta(hours=1), "updating"),
        CostEvent(
            "deployment.status",
            T0 + timedelta(hours=2),
            {"status": "rolled_back", "estimated_usd_per_hour": 2.0},
        ),
        status(T0 + timedelta(hours=3), "deleted"),
    ]
    assert deployment_cost(events, T0, T0 + timedelta(days=1)) == 2.0 + 5.0 + 2.0
    # a status that says nothing of its price leaves the rate as it was
    assert deployment_cost([*events[:3], status(T0 + timedelta(hours=1), "deleted")], T0, T0 + timedelta(days=1)) == 2.0
