"""When a deployment's endpoint runs: a weekly schedule and an idle rule. Pure.

A schedule is a running window on some days of the week in a stated time zone ("mon-fri
08:00-18:00 Europe/Berlin"); outside it the endpoint is paused. Days are written as in cron's
day-of-week field (`mon-fri`, `sat,sun`, `1-5`, `*`) or as words (`weekdays`, `weekends`,
`daily`). A window whose stop is earlier than its start runs overnight (22:00-06:00 runs from
22:00 on each day named until 06:00 the next). Each transition (a restart at the start, a pause at
the stop) is acted on once, so a person's pause or restart in between stands until the next one.

An idle rule pauses an endpoint that has served no request for `idle_pause_minutes`, read from
CloudWatch's `AWS/SageMaker` `Invocations` metric, which SageMaker reports per minute (and not at
all for a minute without requests): the rule cannot be finer than that.

Both act through audited `deployment.action`s: a pause is a pause (model and config kept), and a
scheduled restart passes the guardian like any other restart.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from shared.models import Frozen

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_WORDS = {
    "weekdays": "mon-fri",
    "weekday": "mon-fri",
    "workdays": "mon-fri",
    "business days": "mon-fri",
    "weekends": "sat,sun",
    "weekend": "sat,sun",
    "daily": "*",
    "every day": "*",
    "everyday": "*",
}
METRIC_PERIOD_SECONDS = 60  # SageMaker's endpoint invocation metrics: one datapoint a minute
MIN_IDLE_MINUTES = METRIC_PERIOD_SECONDS // 60
MAX_IDLE_MINUTES = 30 * 24 * 60
Transition = Literal["restart", "pause"]


def days_of(text: str) -> tuple[int, ...]:
    """The weekdays (0 = Monday) a cron-like day-of-week field names; ValueError says what is wrong."""
    said = " ".join(text.lower().split())
    said = DAY_WORDS.get(said, said)
    if said in ("*", "?"):
        return tuple(range(7))
    found: set[int] = set()
    for part in said.replace(" ", "").split(","):
        ends = part.split("-")
        if not part or len(ends) > 2:
            raise ValueError(f"{text!r} is not a list of days: write e.g. mon-fri, sat,sun, 1-5 or weekdays")
        first, last = (_day(e, text) for e in (ends[0], ends[-1]))
        if len(ends) == 2 and ends[1] in ("0", "7"):
            last = 6  # cron's 0 and 7 are both Sunday: "5-7" is fri-sun
        if last < first:
            raise ValueError(f"{part!r} runs backwards: write the earlier day first (e.g. mon-fri, fri-sun)")
        found.update(range(first, last + 1))
    return tuple(sorted(found))


def _day(word: str, text: str) -> int:
    if word.isdigit() and 0 <= int(word) <= 7:
        return (int(word) - 1) % 7  # cron: 0 and 7 Sunday, 1 Monday
    for i, name in enumerate(DAY_NAMES):
        if len(word) >= 3 and name.startswith(word):
            return i
    raise ValueError(f"{word!r} in {text!r} is not a day: use mon..sun, 0-7 (cron) or weekdays/weekends/daily")


def clock_time(text: str) -> time:
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?", text.strip())
    hours, minutes = (int(m.group(1)), int(m.group(2) or 0)) if m else (99, 0)
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} is not a time of day: write HH:MM on a 24-hour clock, e.g. 08:00 or 18:30")
    return time(hours % 24, minutes)


def zone(name: str) -> ZoneInfo:
    if name.strip().upper() in ("UTC", "Z", "GMT"):
        return ZoneInfo("UTC")
    try:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-/]{0,63}", name) or ".." in name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone: use an IANA name such as UTC, Europe/Berlin or America/New_York"
        ) from None


class Schedule(Frozen):
    """Running from `start` to `stop` (local time in `timezone`) on `days`; paused otherwise."""

    days: str = Field(default="mon-fri", max_length=40, description="cron-like: mon-fri, sat,sun, 1-5, *, weekdays")
    start: str = Field(max_length=5, description="HH:MM, 24-hour clock: the endpoint is restarted then")
    stop: str = Field(max_length=5, description="HH:MM: paused then (earlier than start: the next day)")
    timezone: str = Field(default="UTC", max_length=64, description="an IANA time zone, e.g. UTC, Europe/Berlin")

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        if not days_of(value):
            raise ValueError("the schedule names no day, so it would never run: name at least one")
        return " ".join(value.lower().split())

    @field_validator("start", "stop")
    @classmethod
    def _time(cls, value: str) -> str:
        return clock_time(value).strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return str(zone(value).key)

    @model_validator(mode="after")
    def _runs(self) -> Schedule:
        if self.start == self.stop:
            raise ValueError(
                f"start and stop are both {self.start}: the endpoint would never run (or never pause); "
                "to keep it running all the time, remove the schedule"
            )
        return self

    @property
    def weekdays(self) -> tuple[int, ...]:
        return days_of(self.days)

    def describe(self) -> str:
        return f"running {self.days} {self.start}-{self.stop} {self.timezone}, paused otherwise"


class Rules(Frozen):
    """What decides when one deployment runs (either may be absent)."""

    schedule: Schedule | None = None
    idle_pause_minutes: int | None = Field(
        default=None,
        description=f"pause after this many minutes without invocations ({MIN_IDLE_MINUTES}-{MAX_IDLE_MINUTES})",
    )

    @field_validator("idle_pause_minutes", mode="before")
    @classmethod
    def _idle(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return check_idle_minutes(value)
        return value  # anything else: pydantic says it is not a whole number


RuleName = Literal["schedule", "idle_pause_minutes"]
RULE_NAMES: tuple[RuleName, ...] = ("schedule", "idle_pause_minutes")


def merged(current: Rules, said: Rules, fields: list[RuleName]) -> Rules:
    """`current` with the `fields` that were said replaced (a command that sets the idle rule
    keeps the schedule). Applied in log order by everyone who keeps the rules."""
    return current.model_copy(update={name: getattr(said, name) for name in fields})


def check_idle_minutes(minutes: float) -> int:
    if minutes < MIN_IDLE_MINUTES:
        raise ValueError(
            f"idle_pause_minutes {minutes:g} is under {MIN_IDLE_MINUTES}: SageMaker reports Invocations once a "
            "minute, so idleness cannot be told more finely"
        )
    if minutes > MAX_IDLE_MINUTES:
        raise ValueError(f"idle_pause_minutes {minutes:g} is over {MAX_IDLE_MINUTES} (30 days)")
    if minutes != int(minutes):
        raise ValueError(f"idle_pause_minutes {minutes:g} is not a whole number of minutes")
    return int(minutes)


def transitions(schedule: Schedule, since: datetime, until: datetime) -> list[tuple[datetime, Transition]]:
    """Every restart and pause in [since, until], in order, as UTC instants."""
    tz, days = zone(schedule.timezone), schedule.weekdays
    start, stop = clock_time(schedule.start), clock_time(schedule.stop)
    first = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date()
    found: list[tuple[datetime, Transition]] = []
    day: date = first
    while day <= last:
        if day.weekday() in days:
            end_day = day if stop > start else day + timedelta(days=1)
            found.append((_utc(day, start, tz), "restart"))
            found.append((_utc(end_day, stop, tz), "pause"))
        day += timedelta(days=1)
    return sorted((at, what) for at, what in found if since <= at <= until)


def _utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    # a time skipped by a daylight-saving change is taken as the instant the clock jumps past it
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def last_transition(schedule: Schedule, now: datetime) -> tuple[datetime, Transition]:
    """The transition in force now (the latest at or before `now`)."""
    return transitions(schedule, now - timedelta(days=9), now)[-1]


def next_transition(schedule: Schedule, now: datetime) -> tuple[datetime, Transition]:
    return next((at, what) for at, what in transitions(schedule, now, now + timedelta(days=9)) if at > now)


def wanted(schedule: Schedule, now: datetime) -> Literal["running", "paused"]:
    return "running" if last_transition(schedule, now)[1] == "restart" else "paused"


def idle_since(minutes: int, serving_since: datetime | None, now: datetime) -> datetime | None:
    """The start of the window whose invocations decide idleness, or None while the endpoint has
    not yet served that long (a restarted endpoint gets its full idle time again)."""
    if serving_since is None or now - serving_since < timedelta(minutes=minutes):
        return None
    return now - timedelta(minutes=minutes)
