"""Understanding a command: a small grammar over the words people use, plus the model catalog.

The command text is data: nothing in it is ever executed or treated as an instruction; it
can only fill the fields below, and only with values it states.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.catalog import ModelCatalog, ModelSpec
from shared.hub import looks_like_hub_id
from shared.schedules import Schedule, check_idle_minutes

# "schedule": when a deployment runs ("keep X running weekdays 8-18 UTC", "pause X when idle for 2h")
ActionName = Literal["deploy", "pause", "restart", "delete", "scale", "update", "rollback", "schedule"]
Shift = Literal["all_at_once", "canary", "linear"]


class ParsedIntent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: ActionName | None = None
    model_id: str | None = None
    app: str | None = None
    env: Literal["staging", "prod", "dev"] | None = None
    budget_usd_per_hour: float | None = None
    instance_count: int | None = None
    instance_type: str | None = None
    model_text: str | None = None  # what the user called the model, when the catalog lacks it
    # a Hugging Face model id (`org/name`, as written) the catalog lacks: sized from the Hub
    hub_id: str | None = None
    # update and rollback: how traffic moves, where the command says ("with a 10% canary")
    traffic: Shift | None = None
    traffic_percent: int | None = None
    traffic_wait_seconds: int | None = None
    # when it runs: pause after this many idle minutes; a weekly running window (shared/schedules.py)
    idle_minutes: int | None = None
    schedule: Schedule | None = None
    conflicts: list[str] = []


# Verbs, longest phrases first so "spin up" wins over "up".
ACTION_WORDS: list[tuple[str, ActionName]] = [
    ("roll back", "rollback"),
    ("tear down", "delete"),
    ("take down", "delete"),
    ("spin down", "pause"),
    ("shut down", "pause"),
    ("spin up", "deploy"),
    ("roll out", "deploy"),
    ("bring up", "deploy"),
    ("stand up", "deploy"),
    ("start again", "restart"),
    ("bring back", "restart"),
    ("turn off", "pause"),
    ("turn on", "restart"),
    ("deploy", "deploy"),
    ("launch", "deploy"),
    ("serve", "deploy"),
    ("provision", "deploy"),
    ("create", "deploy"),
    ("run", "deploy"),
    ("ship", "deploy"),
    ("host", "deploy"),
    ("install", "deploy"),
    ("pause", "pause"),
    ("stop", "pause"),
    ("suspend", "pause"),
    ("halt", "pause"),
    ("freeze", "pause"),
    ("restart", "restart"),
    ("resume", "restart"),
    ("unpause", "restart"),
    ("reboot", "restart"),
    ("restore", "restart"),
    ("reactivate", "restart"),
    ("relaunch", "restart"),
    ("delete", "delete"),
    ("remove", "delete"),
    ("destroy", "delete"),
    ("decommission", "delete"),
    ("terminate", "delete"),
    ("drop", "delete"),
    ("retire", "delete"),
    ("undeploy", "delete"),
    ("scale", "scale"),
    ("resize", "scale"),
    ("update", "update"),
    ("upgrade", "update"),
    ("downgrade", "update"),
    ("switch", "update"),
    ("swap", "update"),
    ("change", "update"),
    ("migrate", "update"),
    ("move", "update"),
    ("rollback", "rollback"),
    ("revert", "rollback"),
    ("undo", "rollback"),
]
# The same verbs with their object between verb and particle ("take chatbot-x down").
SPLIT_VERBS: list[tuple[str, str, ActionName]] = [
    ("tear", "down", "delete"),
    ("take", "down", "delete"),
    ("spin", "down", "pause"),
    ("shut", "down", "pause"),
    ("wind", "down", "pause"),
    ("turn", "off", "pause"),
    ("turn", "on", "restart"),
    ("bring", "back", "restart"),
    ("roll", "back", "rollback"),
    ("start", "again", "restart"),
    ("spin", "up", "deploy"),
    ("bring", "up", "deploy"),
    ("stand", "up", "deploy"),
]
# Words that only turn a verb into a phrasal one ("scale X down to 1"): never part of a name.
PARTICLES = {"up", "down", "back", "off", "again", "out"}
ENV_WORDS = {
    "prod": "prod",
    "production": "prod",
    "prd": "prod",
    "live": "prod",
    "staging": "staging",
    "stage": "staging",
    "stg": "staging",
    "dev": "dev",
    "development": "dev",
}
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "sixteen": 16,
    "twenty": 20,
    "a couple of": 2,
    "a pair of": 2,
}
FILLER = re.compile(r"^(instruct|it|chat|hf|model|v\d+(\.\d+)*)$")
COUNT_NOUNS = r"(?:instances?|replicas?|nodes?|copies|machines?|servers?|endpoints?|x)"
NUM = r"(\d+|" + "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True)) + r")"
# a count after its noun ("replicas: 3"), where "a" would be an article, not one
COUNTED = r"(\d+|" + "|".join(w for w in NUMBER_WORDS if " " not in w and w not in ("a", "an")) + r")"
PER_HOUR = r"(?:\s*(?:/|per|an|a|each|every)\s*(?:hour|hr|h)\b)?"
STOP_WORDS = (
    {
        "in",
        "on",
        "to",
        "into",
        "with",
        "using",
        "at",
        "under",
        "budget",
        "cap",
        "capped",
        "max",
        "maximum",
        "and",
        "for",
        "of",
        "running",
        "please",
        "now",
        "deployment",
        "endpoint",
        "service",
        "app",
        "env",
        "environment",
        "the",
        "that",
        "which",
        "limit",
        "costing",
        "spending",
        "within",
        "across",
        "via",
        "instance",
        "instances",
        "replica",
        "replicas",
        "from",
        "by",
        "asap",
        "today",
        "only",
        "when",
        "whenever",
        "if",
        "between",
    }
    | set(ENV_WORDS)
    | PARTICLES
)
APP_INTRO = r"\b(?:for|serving|powering|backing|behind|named|called)\s+(?:the\s+|our\s+|my\s+|a\s+|an\s+)?"


@dataclass
class _Text:
    raw: str
    low: str = field(init=False)

    def __post_init__(self) -> None:
        # NFKC folds full-width and styled letters to plain ones; format characters (zero-width
        # spaces and joiners) are dropped so they cannot split or disguise a word.
        folded = self.raw
        if not folded.isascii():  # (ASCII is its own NFKC form, and no ASCII character is a Cf)
            folded = unicodedata.normalize("NFKC", folded)
            folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
        self.low = " ".join(folded.lower().split())


def _mixed_scripts(low: str) -> list[str]:
    """Words that mix Latin letters with look-alikes from other alphabets (a Cyrillic o in "prod")."""
    if low.isascii():  # nothing to mix with
        return []
    return [w for w in low.split() if re.search(r"[a-z]", w) and any(_foreign_letter(ch) for ch in w)]


def _foreign_letter(ch: str) -> bool:
    return ch.isalpha() and not ch.isascii() and not unicodedata.name(ch, "").startswith("LATIN")


def parse(command: str, catalog: ModelCatalog) -> ParsedIntent:
    text = _Text(command)
    action = _action(text.low)
    # when it runs: taken out of the text first (its numbers are not counts, its words not names),
    # and only for what can carry it: a deploy, or words about an existing deployment's running
    can_carry = action in (None, "deploy", "pause", "restart")
    rules = _Rules(text) if can_carry else _Rules.none()
    action = _action(text.low) if rules.said else action
    # (a rule read and found unsaid left the text as it was: reading it again would find the same)
    if not rules.said and not can_carry and _Rules(_Text(command)).said:  # "delete X when idle"
        rules.problems.append(
            f"a schedule or idle rule only pauses and restarts: say e.g. 'pause <app> when idle for 2 hours', "
            f"and {action} it yourself"
        )
    instance_type = _instance_type(text.low)
    model, model_text = _model(text.low, catalog)
    if action is None and model is not None:
        action = "deploy"
    envs = _envs(text.low)
    if rules.said and not (action == "deploy" and model is not None):
        action, (app, app_env) = "schedule", _schedule_app(text.low, action)
    else:
        app, app_env = _app(text.low, action, model_text)
    if rules.schedule is not None and action == "deploy":
        rules.problems.append(
            "a schedule is set on a running deployment: deploy it first, then say e.g. "
            f"'keep {app or 'the-app'} running {rules.schedule.days} {rules.schedule.start}-{rules.schedule.stop}'"
        )
    if app_env:
        envs.append(app_env)
    distinct = sorted(set(envs))
    budget, budget_problem = _budget(_budget_said(text.low))
    several = _several_deployments(text.low, catalog) if action in ("deploy", "update") else None
    traffic, percent, wait = _strategy(text.low) if action in ("update", "rollback") else (None, None, None)
    return ParsedIntent(
        action=action,
        model_id=model.id if model else None,
        app=app,
        env=_strictest(distinct),  # type: ignore[arg-type]
        budget_usd_per_hour=budget,
        instance_count=_count(text.low, instance_type),
        instance_type=instance_type,
        model_text=model_text if model is None else None,
        hub_id=_hub_id(text, catalog) if model is None else None,
        traffic=traffic,
        traffic_percent=percent,
        traffic_wait_seconds=wait,
        idle_minutes=rules.idle_minutes,
        schedule=rules.schedule if action == "schedule" else None,
        conflicts=rules.problems
        + _conflicts(text.low, distinct)
        + ([budget_problem] if budget_problem else [])
        + ([several] if several else []),
    )


def _conflicts(low: str, envs: list[str]) -> list[str]:
    found = []
    if len(envs) > 1:
        found.append(f"the command names more than one environment: {', '.join(envs)}: name one")
    for word in _mixed_scripts(low):
        found.append(f"{word!r} mixes alphabets (a look-alike letter?): retype it in plain letters")
    return found


# Every verb phrase in one pattern: the leftmost match wins and, where two start at the same
# place, the one listed first (the longer phrase), as one search per phrase would decide.
VERB_PATTERN = re.compile(r"\b(" + "|".join(re.escape(phrase) for phrase, _ in ACTION_WORDS) + r")\b")
VERB_ACTION: dict[str, ActionName] = {}
for _phrase, _verb_action in ACTION_WORDS:
    VERB_ACTION.setdefault(_phrase, _verb_action)


def _action(low: str) -> ActionName | None:
    best: tuple[int, ActionName] | None = None
    if m := VERB_PATTERN.search(low):
        best = (m.start(), VERB_ACTION[m.group(1)])
    for verb, particle, action in SPLIT_VERBS:
        m = _split_verb(low, verb, particle)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), action)
    return best[1] if best else None


def _split_verb(low: str, verb: str, particle: str) -> re.Match[str] | None:
    """`verb OBJECT particle`, the object one to four words that are not themselves a particle."""
    if verb not in low or particle not in low:  # most commands say neither: no pattern to run
        return None
    return _split_verb_pattern(verb, particle).search(low)


@functools.cache
def _split_verb_pattern(verb: str, particle: str) -> re.Pattern[str]:
    obj = r"(?:(?!(?:up|down|back|off|again|out|on)\b)[^\s]+\s+){1,4}?"
    return re.compile(rf"\b{verb}\s+({obj}){particle}\b")


def _instance_type(low: str) -> str | None:
    m = re.search(r"\bml\.[a-z0-9]+\.[a-z0-9]+\b", low)
    return m.group(0) if m else None


# What may stand where an amount is written: digits and anything a mistyped or hostile amount
# carries (a sign, an exponent, "nan", "inf"), so a bad amount is refused rather than misread.
AMOUNT = r"([-+−]?[0-9][0-9.,]*(?:e[-+]?[0-9]+)?|[-+−]?(?:nan|inf(?:inity)?)\b)"
MAX_BUDGET_USD_PER_HOUR = 10_000.0


def _budget_said(low: str) -> str | None:
    """The amount a command gives as its hourly budget, as written (None: none given)."""
    patterns = [
        rf"\$\s*{AMOUNT}\s*(?:usd|dollars?)?{PER_HOUR}",
        rf"(?<![\w.]){AMOUNT}\s*(?:usd|dollars?|bucks)\b{PER_HOUR}",
        rf"\b(?:budget|cap|capped|max|limit|spend)\s*(?:is|of|at|to|under|=|:)?\s*\$?\s*{AMOUNT}\s*(?:/|per)\s*(?:hour|hr|h)\b",
        rf"\bbudget\s*(?:is|of|at|to|under|=|:)?\s*\$\s*{AMOUNT}",
    ]
    for pattern in patterns:
        m = re.search(pattern, low)
        if m:
            return m.group(1)
    return None


def _budget(said: str | None) -> tuple[float | None, str | None]:
    """The hourly budget a command gives, or why what it gives is not one. Never a guess: a
    zero, negative, non-numeric or absurd amount is refused, not replaced by the env cap."""
    if said is None:
        return None, None
    if not re.fullmatch(r"(?:\d{1,12}|\d{1,3}(?:,\d{3})+)(?:\.\d{1,4})?", said):
        return None, (
            f"the budget {said!r} is not an amount: write a positive number of dollars per hour, "
            "e.g. 'with budget $20/hour'"
        )
    value = float(said.replace(",", ""))
    if value <= 0:
        return None, "a budget of $0/hour allows nothing: give a positive hourly budget, e.g. 'with budget $20/hour'"
    if value > MAX_BUDGET_USD_PER_HOUR:
        return None, (
            f"a budget of ${value:,.2f}/hour is over the limit of ${MAX_BUDGET_USD_PER_HOUR:,.0f}/hour: "
            "check the amount"
        )
    return value, None


# "2x", "x2" (or with the multiplication sign) standing alone, never inside "8x7b" or "2xlarge"
TIMES = r"(?<![\w.])(?:(\d+)\s*[x×]|[x×]\s*(\d+))(?![\w.])"


def _count(low: str, instance_type: str | None) -> int | None:
    candidates = [
        rf"\b{NUM}\s+(?:more\s+)?{COUNT_NOUNS}\b",
        rf"\b(?:instances?|replicas?|nodes?|(?:instance\s+)?count)\s*(?:[:=]|of)?\s*{COUNTED}\b(?!\s*(?:/|per\b|\$|usd|dollars?))",
        TIMES,
    ]
    if instance_type:
        candidates.insert(0, rf"\b{NUM}\s*(?:[x×]\s*)?{re.escape(instance_type)}")
    candidates.append(rf"\bscale\b.*?\bto\s+{NUM}\b")
    for pattern in candidates:
        m = re.search(pattern, low)
        if m:
            word = next(g for g in m.groups() if g is not None)
            return int(word) if word.isdigit() else NUMBER_WORDS[word]
    return None


def _envs(low: str) -> list[str]:
    """Environment words standing alone: inside a name ("live-bot", "prod-mirror", "api-dev2",
    "chatbot-x-staging") they are part of the name (a trailing one is read by `_slug`)."""
    return [ENV_WORDS[w] for w in re.findall(r"(?<![\w.-])(" + "|".join(ENV_WORDS) + r")(?![\w-])", low)]


def _strictest(envs: list[str]) -> str | None:
    for env in ("prod", "staging", "dev"):
        if env in envs:
            return env
    return None


# ---- models -------------------------------------------------------------------------


def normalize_model_words(text: str) -> list[str]:
    text = re.sub(r"[^a-z0-9.]+", " ", text.lower())
    text = re.sub(r"([a-z]{3,})(\d)", r"\1 \2", text)
    text = re.sub(r"\b(\d+(?:\.\d+)?)\s*(?:b|bn|billion)\b", r"\1b", text)  # "8 b", "8 billion": 8b
    return [w.strip(".") for w in text.split() if w.strip(".") and not FILLER.match(w.strip("."))]


@functools.lru_cache(maxsize=4096)
def _alias_words(alias: str) -> list[str]:
    """A catalog alias's words (the catalog is fixed at start: each alias is split once)."""
    return normalize_model_words(alias)


def _model(low: str, catalog: ModelCatalog) -> tuple[ModelSpec | None, str | None]:
    for token in re.findall(r"[\w.-]+/[\w.-]+", low):
        if (spec := catalog.get(token)) is not None:
            return spec, token
    words = normalize_model_words(low)
    present = set(words)  # an alias with a word the command lacks cannot match: most are skipped here
    best: tuple[int, ModelSpec] | None = None
    for spec in catalog.models:
        for alias in spec.aliases:
            alias_words = _alias_words(alias)
            if not present.issuperset(alias_words):
                continue
            if _contains(words, alias_words) and (best is None or len(alias_words) > best[0]):
                best = (len(alias_words), spec)
    if best:
        return best[1], None
    return None, _model_words(low)


def _hub_id(text: _Text, catalog: ModelCatalog) -> str | None:
    """An `org/name` the catalog lacks, with its case as written (Hub ids are shown that way)."""
    folded = unicodedata.normalize("NFKC", text.raw)
    for token in re.findall(r"(?<![\w./$-])[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(?![\w/])", folded):
        token = token.rstrip(".")
        if looks_like_hub_id(token) and catalog.get(token) is None:
            return token
    return None


def _contains(words: list[str], needle: list[str]) -> bool:
    """The alias's words side by side, in any order ("8b llama 3.1" is "llama 3.1 8b")."""
    n, wanted = len(needle), sorted(needle)
    return any(sorted(words[i : i + n]) == wanted for i in range(len(words) - n + 1))


def _model_words(low: str) -> str | None:
    """What stands between the verb and the app, for the 'unknown model' message."""
    verbs = "|".join(re.escape(p) for p, a in ACTION_WORDS if a == "deploy")
    m = re.search(rf"\b(?:{verbs})\s+(.+?)(?:{APP_INTRO}|\s+(?:on|in|to|with|using)\s|$)", low)
    if m is None:  # an update names the model after "to" ("switch chatbot-x to gpt-7 turbo")
        verbs = "|".join(re.escape(p) for p, a in ACTION_WORDS if a == "update")
        m = re.search(rf"\b(?:{verbs})\b.*?\bto\s+(.+?)(?:{APP_INTRO}|\s+(?:on|in|with|using)\s|[,;]|$)", low)
    return m.group(1).strip() if m else None


# ---- when it runs ---------------------------------------------------------------------

UNIT_MINUTES: dict[str, float] = {"m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "h": 60, "hr": 60, "hrs": 60}
UNIT_MINUTES |= {"hour": 60, "hours": 60, "d": 1440, "day": 1440, "days": 1440}
UNIT_MINUTES |= {unit: 1 / 60 for unit in ("s", "sec", "secs", "second", "seconds")}
DURATION = (
    r"(\d+(?:\.\d+)?|an?|one|two|three|four|five|six|eight|ten|twelve)\s*"
    r"(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)\b"
)
IDLE_WORDS = r"(?:idle|idling|unused|inactive|quiet|not used|without (?:traffic|requests|invocations|calls|use))"
IDLE_PHRASES = (
    # "when idle for 2 hours", "if unused for 90 min", "idle 30m"
    rf"\b(?:(?:when|if|once|whenever)\s+(?:it\s+is\s+|it's\s+)?)?{IDLE_WORDS}\s+(?:for\s+)?(?:more\s+than\s+|over\s+)?"
    + DURATION,
    # "after 2 hours idle", "after 45 minutes of inactivity", "after an hour without traffic"
    rf"\b(?:after|following)\s+{DURATION}\s+(?:of\s+)?(?:{IDLE_WORDS}|inactivity|idleness|no\s+(?:traffic|requests))",
)
DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?"
DAY_RANGE = rf"{DAY}(?:\s*(?:-|–|to|through|thru|until)\s*{DAY})?"
DAY_WORDS = r"weekdays?|weekends?|workdays|business\s+days|daily|every\s*day"
DAYS = rf"((?:{DAY_RANGE})(?:\s*(?:,|and|&)\s*{DAY_RANGE})*|{DAY_WORDS})"
CLOCK = r"(\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?|noon|midnight)"
# a window of hours, never a range of counts ("from 2 to 4 instances")
HOURS = rf"(?:from\s+|between\s+)?{CLOCK}\s*(?:-|–|to|until|till|and)\s*{CLOCK}(?!\s*(?:{COUNT_NOUNS}|gpus?)\b)"
ZONE = r"\b(utc|gmt|[a-z]+/[a-z_]+(?:/[a-z_]+)?)\b"


class _Rules:
    """The idle rule and the schedule a command states, cut out of its text."""

    def __init__(self, text: _Text | None) -> None:
        self.idle_minutes: int | None = None
        self.schedule: Schedule | None = None
        self.problems: list[str] = []
        if text is None:
            return
        low = text.low
        for pattern in IDLE_PHRASES:
            if m := re.search(pattern, low):
                self.idle_minutes = self._minutes(m.group(1), m.group(2))
                low = _cut(low, m)
                break
        hours = re.search(HOURS, low)
        days = re.search(rf"\b(?:on\s+|every\s+)?{DAYS}\b", low)
        clock_like = hours and re.search(r":|am\b|pm\b|noon|midnight", hours.group(0))
        zoned = hours and re.search(ZONE, low[hours.end() :])
        cue = re.search(r"\b(?:keep|running|schedule|scheduled|only|daily|hours)\b", low)
        if hours and (days or zoned or clock_like or cue):
            zone_m = re.search(ZONE, low[hours.end() :])
            self.schedule = self._schedule(days, hours, zone_m)
            cuts = [hours, *(x for x in (days,) if x)]
            for m in sorted(cuts, key=lambda m: m.start(), reverse=True):
                low = _cut(low, m)
            if zone_m:
                low = low.replace(zone_m.group(0), " ", 1)
        text.low = " ".join(low.split())

    @classmethod
    def none(cls) -> _Rules:
        return cls(None)

    @property
    def said(self) -> bool:
        return self.idle_minutes is not None or self.schedule is not None or bool(self.problems)

    def _minutes(self, amount: str, unit: str) -> int | None:
        number = float(amount) if amount.replace(".", "").isdigit() else float(NUMBER_WORDS.get(amount, 1))
        minutes = number * UNIT_MINUTES[unit]
        try:
            return check_idle_minutes(round(minutes, 6))
        except ValueError as exc:
            self.problems.append(str(exc))
            return None

    def _schedule(
        self, days: re.Match[str] | None, hours: re.Match[str], zone_m: re.Match[str] | None
    ) -> Schedule | None:
        try:
            return Schedule(
                days=_days_text(days.group(1)) if days else "*",
                start=_clock(hours.group(1)),
                stop=_clock(hours.group(2)),
                timezone=_zone_name(zone_m.group(1)) if zone_m else "UTC",
            )
        except ValueError as exc:  # pydantic's ValidationError is one; its first message says what
            errors = getattr(exc, "errors", None)
            why = errors()[0]["msg"].removeprefix("Value error, ") if errors else str(exc)
            self.problems.append(f"the schedule: {why}")
            return None


def _cut(low: str, m: re.Match[str]) -> str:
    return low[: m.start()] + " " + low[m.end() :]


def _days_text(said: str) -> str:
    said = re.sub(r"\s*(?:–|to|through|thru|until)\s*", "-", said.replace(".", ""))
    said = re.sub(r"\s*(?:,|and|&)\s*", ",", said)
    said = re.sub(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*", r"\1", said)
    return " ".join(said.split())


def _clock(said: str) -> str:
    said = said.replace(".", "").replace(" ", "")
    if said in ("noon", "midnight"):
        return "12:00" if said == "noon" else "00:00"
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(am|pm)?", said)
    if not m:
        return said
    hour, minute, half = int(m.group(1)), m.group(2) or "00", m.group(3)
    if half and hour <= 12:
        hour = hour % 12 + (12 if half == "pm" else 0)
    return f"{hour:02d}:{minute}"


@functools.cache
def _zones() -> dict[str, str]:
    import zoneinfo

    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _zone_name(said: str) -> str:
    return "UTC" if said in ("utc", "gmt") else _zones().get(said, said)


def _schedule_app(low: str, action: ActionName | None) -> tuple[str | None, str | None]:
    """The app a schedule or idle rule is for: "keep X running", "pause X when idle", "schedule X"."""
    m = re.search(r"\b(?:keep|schedule|have|leave|set|run)\s+(?:the\s+|our\s+|my\s+)?(.+)$", low)
    if m:
        return _slug(m.group(1))
    return _app(low, action if action not in (None, "deploy", "schedule") else "pause", None)


# ---- app ----------------------------------------------------------------------------


def _app(low: str, action: ActionName | None, model_text: str | None) -> tuple[str | None, str | None]:
    # a deploy names its app after "for"; so may an update ("switch to qwen 2.5 7b for chatbot-x")
    if action in ("deploy", None) or (action == "update" and re.search(APP_INTRO, low)):
        m = re.search(APP_INTRO + r"(.+)$", low)
        words = m.group(1) if m else ""
    else:
        for verb, particle, split_action in SPLIT_VERBS:
            if split_action == action and (split := _split_verb(low, verb, particle)):
                return _slug(re.sub(r"^(?:the|our|my)\s+", "", split.group(1)))
        verbs = "|".join(re.escape(p) for p, a in ACTION_WORDS if a == action)
        m = re.search(
            rf"\b(?:{verbs})\s+(?:(?:up|down|back|out)\s+)?(?:the\s+|our\s+|my\s+)?"
            rf"(?:app\s+|(?:deployment|model|endpoint)\s+(?:of\s+|for\s+)?)?(.+)$",
            low,
        )
        words = m.group(1) if m else ""
    return _slug(words)


MINUTES = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hr": 3600, "hour": 3600}


def _strategy(low: str) -> tuple[Shift | None, int | None, int | None]:
    """How an update moves traffic, where the command says: "with a 10% canary", "canary 20
    percent", "linear in 25% steps", "all at once"; and how long each step bakes ("wait 5
    minutes", "baking 10 min", "every 2 minutes"). Unsaid parts come from the env's setting."""
    shift: Shift | None = None
    percent: int | None = None
    pct = r"(\d{1,3})\s*(?:%|percent|pct)"
    if m := re.search(rf"{pct}\s*canary|\bcanary\s*(?:of|at|with|size)?\s*{pct}", low):
        shift, percent = "canary", int(m.group(1) or m.group(2))
    elif re.search(r"\bcanary\b", low):
        shift = "canary"
    if m := re.search(rf"\blinear(?:ly)?\b.*?{pct}|{pct}\s*(?:linear|steps?|increments?|at a time)", low):
        shift, percent = "linear", int(m.group(1) or m.group(2))
    elif re.search(r"\blinear(?:ly)?\b", low):
        shift = "linear"
    if re.search(r"\ball[\s-]+at[\s-]+once\b|\bin one go\b|\bwhole fleet\b", low):
        shift = "all_at_once"
    wait = None
    units = "|".join(sorted(MINUTES, key=len, reverse=True))
    if m := re.search(rf"\b(?:wait(?:ing)?|bak(?:e|ing)|hold(?:ing)?|every|for|of)\s+(\d{{1,4}})\s*({units})s?\b", low):
        wait = int(m.group(1)) * MINUTES[m.group(2)]
    return shift, percent, wait


def _several_deployments(low: str, catalog: ModelCatalog) -> str | None:
    """A command that asks for two deployments ("A for x and B for y") is refused whole: planning
    only the first would drop the rest without a word."""
    parts = [p for p in re.split(r"\band\b|\bplus\b|\bthen\b|[,;&+]", low) if p.strip()]
    if len(parts) < 2:  # one part names at most one model and one app
        return None
    models = {spec.id for part in parts if (spec := _model(part, catalog)[0]) is not None}
    apps = {
        m.group(1)
        for part in parts
        if (m := re.search(APP_INTRO + r"([\w.-]+)", part)) and m.group(1) not in STOP_WORDS
    }
    named = [
        f"{kind} {', '.join(sorted(found))}" for kind, found in (("models", models), ("apps", apps)) if len(found) > 1
    ]
    if named:
        return f"the command asks for more than one deployment ({'; '.join(named)}): send one command per deployment"
    return None


def _slug(words: str) -> tuple[str | None, str | None]:
    taken: list[str] = []
    for token in re.split(r"\s+", words.strip()):
        bare = token.strip("\"'`")
        end = bare.endswith((",", ";", ".", ":", "!", "?")) and not re.fullmatch(r"[\w-]+\.[\w-]+", bare)
        bare = bare.rstrip(",;.:!?")
        if not bare or bare in STOP_WORDS or bare.startswith("$") or re.fullmatch(r"\d+(\.\d+)?|\d+[x×]|[x×]\d+", bare):
            break
        taken.append(bare)
        if end:
            break
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(taken)).strip("-")[:50].strip("-")
    if not slug:
        return None, None
    m = re.fullmatch(r"(.+?)-(prod|production|staging|stage|dev|development)", slug)
    if m:
        return m.group(1), ENV_WORDS[m.group(2)]
    return slug, None
