"""Guardrails: every finding has a stable code, a message that says what to change, a severity.

The guardian trusts nothing upstream: it validates the config against the schema again, knows
prices and GPU memory only from the catalogs (an unknown instance type is never priced at a
default), and treats retrieved policy text as something to show, never as a rule to obey.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pydantic import ValidationError

from shared.catalog import InstanceCatalog, ModelCatalog
from shared.costs import HOURS_PER_MONTH
from shared.models import (
    MAX_INSTANCES,
    MAX_UPDATE_SECONDS,
    PROVISION_SECONDS,
    Env,
    Finding,
    SageMakerDeploymentConfig,
    UpdateStrategy,
)
from shared.settings import ExecutorMode, Settings

SCHEMA_CODES = {
    "endpoint_name": "ENDPOINT_NAME_INVALID",
    "instance_count": "INSTANCE_COUNT_OVER_LIMIT",
    "instance_type": "INSTANCE_TYPE_INVALID",
    "budget_usd_per_hour": "BUDGET_INVALID",
}


@dataclass(frozen=True)
class Spend:
    """Month-to-date spend (from the cost meter) the monthly budget check works against."""

    month_to_date_usd: float


def hourly_cost(config: SageMakerDeploymentConfig, instances: InstanceCatalog) -> float | None:
    spec = instances.get(config.instance_type)
    return None if spec is None else round(spec.usd_per_hour * config.instance_count, 4)


def check(
    config: SageMakerDeploymentConfig,
    env: Env,
    model_id: str,
    models: ModelCatalog,
    instances: InstanceCatalog,
    settings: Settings,
    spend: Spend | None = None,
) -> list[Finding]:
    findings = _schema(config)
    if findings:
        return findings
    findings += _limits(config, env, settings)
    model = models.get(model_id)
    if model is None or model.id != config.model_name:
        findings.append(
            Finding(
                code="UNKNOWN_MODEL",
                message=f"model {config.model_name!r} is not in the catalog and was not sized from the Hugging Face "
                "Hub: pick a catalog model (`agentops parse` suggests some) or a Hub model id (org/name)",
            )
        )
    if model is not None and model.gated:
        findings += gated_token(model.id, settings)
    instance = instances.get(config.instance_type)
    if instance is None:
        findings.append(
            Finding(
                code="UNKNOWN_INSTANCE_TYPE",
                message=f"instance type {config.instance_type} is not in the catalog, so it cannot be "
                "priced or sized: choose a listed ml.* type",
            )
        )
        return findings
    if model is not None:
        findings += _fit(model.id, model.memory_gib, config, instance.accelerator, instance.gpu_memory_gib)
    cost = round(instance.usd_per_hour * config.instance_count, 4)
    findings += _cost(config, env, cost, instance.usd_per_hour, settings, spend)
    return findings


def gated_token(model_id: str, settings: Settings) -> list[Finding]:
    """A gated Hugging Face model downloads its weights only with a token. Without one an AWS
    endpoint would fail while starting (after the instances bill): an error in `aws` mode, a
    warning where nothing real is downloaded (dry-run, sandbox)."""
    if settings.hf_token_configured:
        return []
    real = settings.executor_mode is ExecutorMode.AWS
    return [
        Finding(
            code="HF_TOKEN_MISSING",
            severity="error" if real else "warning",
            message=f"{model_id} is gated on Hugging Face and no token is configured: set HF_TOKEN_SECRET_ARN "
            "(a Secrets Manager secret the executor reads) or HF_TOKEN, from an account that accepted the "
            f"model's license{'' if real else ', before deploying to AWS'}",
        )
    ]


def update_strategy(
    env: Env,
    settings: Settings,
    shift: str | None = None,
    percent: int | None = None,
    wait_seconds: int | None = None,
) -> UpdateStrategy:
    """The strategy of an update: what the command or request says, the env's setting for the
    rest (UPDATE_STRATEGY). Raises ValueError (pydantic's) for a percent or wait out of range."""
    base = settings.update_strategy.get(env.value, UpdateStrategy())
    said = {"shift": shift, "percent": percent, "wait_seconds": wait_seconds}
    if shift is not None and shift != base.shift and percent is None:
        said["percent"] = 25 if shift == "linear" else 10  # a share that suits the named shift
    return UpdateStrategy.model_validate({**base.model_dump(), **{k: v for k, v in said.items() if v is not None}})


def strategy_findings(strategy: UpdateStrategy) -> list[Finding]:
    """SageMaker stops a blue/green update after MaximumExecutionTimeoutInSeconds (at most 4 h)."""
    total = strategy.bake_seconds() + PROVISION_SECONDS
    if total <= MAX_UPDATE_SECONDS:
        return []
    return [
        Finding(
            code="UPDATE_TOO_SLOW",
            message=f"{strategy.describe()} takes {strategy.bake_seconds() // 60} min of baking plus up to "
            f"{PROVISION_SECONDS // 60} min to start the new fleet, over SageMaker's {MAX_UPDATE_SECONDS // 3600} h "
            "limit for an update: use larger steps or a shorter wait",
        )
    ]


def _schema(config: SageMakerDeploymentConfig) -> list[Finding]:
    try:
        SageMakerDeploymentConfig.model_validate(config.model_dump())
    except ValidationError as exc:
        return [
            Finding(
                code=SCHEMA_CODES.get(str(err["loc"][0]) if err["loc"] else "", "SCHEMA_INVALID"), message=_say(err)
            )
            for err in exc.errors()
        ]
    return []


def _say(err: object) -> str:
    e = err if isinstance(err, dict) else {}
    field = ".".join(str(p) for p in e.get("loc", ())) or "config"
    return f"{field}: {str(e.get('msg', 'invalid')).removeprefix('Value error, ')}"


def instance_allowed(instance_type: str, env: Env, settings: Settings) -> bool:
    """Whether the env's allow-list (shell patterns like ml.g5.*; none: any) admits the type."""
    allowed = settings.env_instance_allowlist.get(env.value)
    return allowed is None or any(fnmatch.fnmatchcase(instance_type, p) for p in allowed)


def _limits(config: SageMakerDeploymentConfig, env: Env, settings: Settings) -> list[Finding]:
    findings = []
    limit = min(settings.max_instance_count, settings.env_max_instance_count.get(env.value, MAX_INSTANCES))
    if config.instance_count > limit:
        findings.append(
            Finding(
                code="INSTANCE_COUNT_OVER_LIMIT",
                message=f"instance_count {config.instance_count} is over the limit of {limit} for {env.value}: "
                f"ask for {limit} or fewer",
            )
        )
    if not instance_allowed(config.instance_type, env, settings):
        allowed = settings.env_instance_allowlist.get(env.value, [])
        findings.append(
            Finding(
                code="INSTANCE_TYPE_NOT_ALLOWED",
                message=f"{config.instance_type} is not allowed in {env.value}; allowed: {', '.join(allowed)}",
            )
        )
    return findings


def _fit(
    model_id: str, need_gib: float, config: SageMakerDeploymentConfig, accelerator: str, gpu_gib: float
) -> list[Finding]:
    if accelerator == "cpu":
        return [
            Finding(
                code="CPU_INSTANCE_FOR_LLM",
                message=f"{config.instance_type} has no GPU; {model_id} needs {need_gib} GiB of GPU memory: "
                "choose a GPU instance such as ml.g5 or ml.g6",
            )
        ]
    if accelerator == "inferentia":
        return [
            Finding(
                code="NEURON_BUILD_REQUIRED",
                message=f"{config.instance_type} runs Inferentia; the catalog serves {model_id} with a GPU "
                "container: choose a GPU instance (a Neuron-compiled build is not in the catalog)",
            )
        ]
    if gpu_gib < need_gib:
        return [
            Finding(
                code="GPU_MEMORY_TOO_SMALL",
                message=f"{model_id} needs {need_gib} GiB of GPU memory; {config.instance_type} has "
                f"{gpu_gib} GiB: choose a larger instance",
            )
        ]
    return []


def _cost(
    config: SageMakerDeploymentConfig,
    env: Env,
    cost: float,
    unit: float,
    settings: Settings,
    spend: Spend | None,
) -> list[Finding]:
    findings = []
    if cost > config.budget_usd_per_hour:
        findings.append(
            Finding(
                code="OVER_BUDGET",
                message=f"estimated ${cost:.2f}/h ({config.instance_count} x {config.instance_type} at "
                f"${unit:.3f}/h) is over the budget of ${config.budget_usd_per_hour:.2f}/h: "
                "raise the budget, or use fewer or smaller instances",
            )
        )
    cap = settings.env_hourly_caps.get(env.value)
    if cap is not None and cost > cap:
        findings.append(
            Finding(
                code="OVER_ENV_CAP",
                message=f"estimated ${cost:.2f}/h is over the {env.value} cap of ${cap:.2f}/h: "
                "use fewer or smaller instances",
            )
        )
    if spend is not None:
        remaining = settings.monthly_budget_usd - spend.month_to_date_usd
        projected = cost * HOURS_PER_MONTH
        if projected > remaining:
            findings.append(
                Finding(
                    code="OVER_MONTHLY_BUDGET",
                    severity=settings.monthly_budget_policy,
                    message=f"a month of this plan (${projected:,.0f}) is over what is left of the monthly "
                    f"budget (${remaining:,.0f} of ${settings.monthly_budget_usd:,.0f}, "
                    f"${spend.month_to_date_usd:,.0f} spent so far)",
                )
            )
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
