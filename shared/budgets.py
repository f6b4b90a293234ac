"""Monthly budgets per env and per app, and what crossing their thresholds does. Pure.

A budget's scope is `env:<env>` (every deployment in that env) or `app:<app>` (the app's
endpoints in every env). Spend is the audit-log meter's month to date (shared/costs.py); the
forecast adds the current run rate (what is billing now, per hour) until the month ends. Each
threshold is a share of the budget, on the actual spend or the forecast, with an action:

- `notify`: a `budget.threshold_crossed` event, which the notifier delivers;
- `block`: the guardian refuses what would spend more in the scope (new plans, restarts,
  scale-ups, updates that cost more), with a finding naming the budget;
- `pause`: the scope's live endpoints are paused through audited `deployment.action`s whose actor
  is the budget (`budget:<scope>`); never deleted, so a restart brings each back as it was.

A crossing is announced once per threshold per month (its event id derives from scope, period and
threshold), however often it is checked.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.models import Env, Finding, Frozen

SCOPE = r"^(env:(dev|staging|prod)|app:[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?)$"
NAMESPACE = uuid.UUID("0c9d5e1e-4b7a-4f0e-9a3b-7d1f2e3c4b5a")


class Threshold(Frozen):
    percent: float = Field(gt=0, le=100, description="a share of the monthly budget, in %")
    basis: Literal["actual", "forecast"] = "actual"
    action: Literal["notify", "block", "pause"] = "notify"

    @property
    def key(self) -> str:
        return f"{self.percent:g}:{self.basis}:{self.action}"


def default_thresholds() -> list[Threshold]:
    return [
        Threshold(percent=50),
        Threshold(percent=80, basis="forecast"),
        Threshold(percent=100, action="block"),
    ]


class Budget(Frozen):
    scope: str = Field(pattern=SCOPE, description="env:<dev|staging|prod> or app:<app>")
    monthly_usd: float = Field(gt=0, le=100_000_000, allow_inf_nan=False)
    thresholds: list[Threshold] = Field(default_factory=default_thresholds, min_length=1, max_length=10)

    @field_validator("thresholds")
    @classmethod
    def _distinct(cls, value: list[Threshold]) -> list[Threshold]:
        keys = [t.key for t in value]
        if len(keys) != len(set(keys)):
            raise ValueError("the same threshold is given twice")
        return value

    @model_validator(mode="after")
    def _sorted(self) -> Budget:
        object.__setattr__(self, "thresholds", sorted(self.thresholds, key=lambda t: (t.percent, t.basis, t.action)))
        return self


@dataclass(frozen=True)
class Standing:
    """Where a scope stands this month."""

    spend_usd: float
    run_rate_usd_per_hour: float
    forecast_usd: float


def scopes_of(env: str, app: str) -> tuple[str, str]:
    return f"env:{env}", f"app:{app}"


def app_of(endpoint_name: str, env: str) -> str:
    return endpoint_name.removesuffix(f"-{env}")


def period(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def hours_left(now: datetime) -> float:
    now = now.astimezone(UTC)
    days = calendar.monthrange(now.year, now.month)[1]
    end = now.replace(day=days, hour=0, minute=0, second=0, microsecond=0)
    return max(0.0, (end - now).total_seconds() / 3600.0 + 24.0)


def standing(spend_usd: float, run_rate: float, now: datetime) -> Standing:
    """The month-end forecast assumes what bills now keeps billing to the month's end."""
    return Standing(round(spend_usd, 4), round(run_rate, 4), round(spend_usd + run_rate * hours_left(now), 4))


def crossed(budget: Budget, where: Standing) -> list[Threshold]:
    """The thresholds the scope is past now."""
    return [
        t
        for t in budget.thresholds
        if (where.spend_usd if t.basis == "actual" else where.forecast_usd) >= budget.monthly_usd * t.percent / 100
    ]


def crossing_id(budget: Budget, threshold: Threshold, month: str) -> uuid.UUID:
    """One event per threshold per month: a check that finds it again says the same event."""
    return uuid.uuid5(NAMESPACE, f"{budget.scope}:{month}:{threshold.key}:{budget.monthly_usd:g}")


def blocking(budgets: dict[str, Budget], standings: dict[str, Standing], env: Env, app: str) -> list[Finding]:
    """Why a plan or change that spends more in (env, app) is refused now, if it is."""
    findings = []
    for scope in scopes_of(env.value, app):
        budget, where = budgets.get(scope), standings.get(scope)
        if budget is None or where is None:
            continue
        for t in crossed(budget, where):
            if t.action in ("block", "pause"):
                actual = t.basis == "actual"
                basis = f"${where.spend_usd:,.2f} spent" if actual else f"${where.forecast_usd:,.2f} forecast"
                findings.append(
                    Finding(
                        code="BUDGET_BLOCKED",
                        message=f"the {scope} budget of ${budget.monthly_usd:,.2f}/month is past its {t.percent:g}% "
                        f"{t.action} threshold ({basis} this month): nothing that spends more starts in it until "
                        f"the budget is raised (PUT /api/budgets/{scope}) or next month",
                    )
                )
                break
    return findings
