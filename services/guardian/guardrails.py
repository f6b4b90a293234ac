"""Guardrails: every finding has a stable code, a message that says what to change, a severity."""

from __future__ import annotations

from shared.catalog import InstanceCatalog, ModelCatalog, fits
from shared.models import Env, Finding, SageMakerDeploymentConfig
from shared.settings import Settings


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
) -> list[Finding]:
    findings: list[Finding] = []
    limit = settings.max_instance_count
    if config.instance_count > limit:
        findings.append(
            Finding(
                code="INSTANCE_COUNT_OVER_LIMIT",
                message=f"instance_count {config.instance_count} is over the limit of {limit} for {env.value}",
            )
        )
    model = models.get(model_id)
    if model is None:
        findings.append(
            Finding(code="UNKNOWN_MODEL", message=f"model {model_id!r} is not in the catalog: pick a catalog model")
        )
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
    if model is not None and instance.accelerator == "cpu":
        findings.append(
            Finding(
                code="CPU_INSTANCE_FOR_LLM",
                message=f"{config.instance_type} has no GPU; {model.id} needs {model.memory_gib} GiB of "
                "GPU memory: choose a GPU instance such as ml.g5 or ml.g6",
            )
        )
    elif model is not None and not fits(model, instance):
        findings.append(
            Finding(
                code="GPU_MEMORY_TOO_SMALL",
                message=f"{model.id} needs {model.memory_gib} GiB of GPU memory; {config.instance_type} "
                f"has {instance.gpu_memory_gib} GiB: choose a larger instance",
            )
        )
    cost = instance.usd_per_hour * config.instance_count
    if cost > config.budget_usd_per_hour:
        findings.append(
            Finding(
                code="OVER_BUDGET",
                message=f"estimated ${cost:.2f}/h ({config.instance_count} x {config.instance_type} at "
                f"${instance.usd_per_hour:.3f}/h) is over the budget of ${config.budget_usd_per_hour:.2f}/h: "
                "raise the budget, or use fewer or smaller instances",
            )
        )
    cap = settings.env_hourly_caps.get(env.value)
    if cap is not None and cost > cap:
        findings.append(
            Finding(code="OVER_ENV_CAP", message=f"estimated ${cost:.2f}/h is over the {env.value} cap of ${cap:.2f}/h")
        )
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
