"""From an understood command to a sized, priced deployment plan (the rules planner)."""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError

from shared.catalog import InstanceCatalog, ModelCatalog, ModelSpec, cheapest_fit
from shared.events import (
    IntentReceived,
    PlanFailed,
    PlanFailedData,
    PlanProposed,
    PlanProposedData,
)
from shared.guardrails import instance_allowed
from shared.hub import Hub, HubError
from shared.intent import ParsedIntent, parse
from shared.models import Env, Evidence, SageMakerDeploymentConfig
from shared.settings import Settings

SERVICE = "planner"
MAX_INSTANCES = 4  # SageMakerDeploymentConfig.instance_count


Cite = Callable[[str], Awaitable[list[Evidence]]]


@dataclass(frozen=True)
class Understood:
    parsed: ParsedIntent
    model: ModelSpec
    env: Env


async def resolve(event: IntentReceived, models: ModelCatalog, hub: Hub | None) -> Understood | PlanFailed:
    """`understand`, after sizing a Hugging Face model the catalog lacks (`org/name`) from the
    Hub's metadata; a model the Hub cannot describe (missing, unreachable) is refused, never
    guessed."""
    parsed = parse(event.data.command, models)
    if hub is not None and parsed.model_id is None and parsed.hub_id and parsed.action in ("deploy", None):
        try:
            await hub.spec(parsed.hub_id)  # remembered in `models`: the parse below finds it
        except HubError as exc:
            understood = parsed.model_dump(exclude_none=True, exclude={"conflicts"})
            return event.caused(PlanFailed, "plan", SERVICE, PlanFailedData(reason=str(exc), understood=understood))
        return understand(event, models)
    return understand(event, models, parsed)  # the catalog did not change: the same words, the same parse


def understand(
    event: IntentReceived, models: ModelCatalog, parsed: ParsedIntent | None = None
) -> Understood | PlanFailed:
    parsed = parsed if parsed is not None else parse(event.data.command, models)
    problem = _problem(parsed, models)
    if problem is not None:
        return event.caused(PlanFailed, "plan", SERVICE, problem)
    assert parsed.model_id is not None and parsed.app is not None
    model = models.get(parsed.model_id)
    assert model is not None
    return Understood(parsed, model, _env(event, parsed, []))


async def plan_command(
    event: IntentReceived,
    models: ModelCatalog,
    instances: InstanceCatalog,
    settings: Settings,
    cite: Cite,
    hub: Hub | None = None,
) -> PlanProposed | PlanFailed:
    """The rules planner: deterministic, every choice citing the passage behind it (offline but
    for the Hub's metadata of a model outside the catalog)."""
    understood = await resolve(event, models, hub)
    if isinstance(understood, PlanFailed):
        return understood
    evidence = {choice: await cite(query) for choice, query in queries(understood).items()}
    return propose(event, understood, instances, settings, evidence)


def queries(u: Understood) -> dict[str, str]:
    """What to look up for each choice the planner makes (the policy passage it cites)."""
    return {
        "count": f"{u.env.value} instance count availability policy",
        "instance": f"gpu memory formula choosing the instance {u.model.params_b:g}b model",
        "budget": f"{u.env.value} hourly budget environment cap",
    }


def propose(
    event: IntentReceived,
    u: Understood,
    instances: InstanceCatalog,
    settings: Settings,
    evidence: dict[str, list[Evidence]],
    planner: str = "rules",
    note: str | None = None,
) -> PlanProposed | PlanFailed:
    parsed, model = u.parsed, u.model
    try:
        proposal = _propose(event, parsed, model, instances, settings, evidence, planner, note)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        failed = PlanFailedData(
            reason=f"the plan is not valid: {reasons}", understood=parsed.model_dump(exclude_none=True)
        )
        return event.caused(PlanFailed, "plan", SERVICE, failed)
    return event.caused(PlanProposed, "plan", SERVICE, proposal)


def _problem(parsed: ParsedIntent, models: ModelCatalog) -> PlanFailedData | None:
    understood = parsed.model_dump(exclude_none=True, exclude={"conflicts"})
    if parsed.action is None:
        return PlanFailedData(
            reason="could not tell what to do: start with deploy, pause, restart, scale or delete, "
            "e.g. 'deploy llama 3.1 8b for chatbot-x'",
            understood=understood,
        )
    if parsed.action != "deploy":
        return PlanFailedData(
            reason=f"'{parsed.action}' acts on an existing deployment, not a new plan: send it through "
            f"POST /api/agent/command or the deployment's {parsed.action} action",
            understood=understood,
        )
    if parsed.model_id is None:
        asked = parsed.model_text or "the model"
        close = closest_models(asked, models)
        return PlanFailedData(
            reason=f"unknown model {asked!r}: name a catalog model"
            + (f", e.g. {close[0]}" if close else "")
            + ", or a Hugging Face model id (org/name)",
            understood=understood,
            suggestions=close,
        )
    if parsed.app is None:
        return PlanFailedData(
            reason="say which application the model is for, e.g. '... for chatbot-x'",
            understood=understood,
        )
    if parsed.instance_count is not None and not 1 <= parsed.instance_count <= MAX_INSTANCES:
        return PlanFailedData(
            reason=f"instance_count {parsed.instance_count} is outside 1-{MAX_INSTANCES}: "
            f"a deployment runs 1 to {MAX_INSTANCES} instances",
            understood=understood,
        )
    if parsed.conflicts:
        return PlanFailedData(reason="; ".join(parsed.conflicts), understood=understood)
    return None


def closest_models(asked: str, models: ModelCatalog, n: int = 3) -> list[str]:
    names = {alias: m.id for m in models.models for alias in m.aliases}
    names.update({m.id.lower(): m.id for m in models.models})
    hits = difflib.get_close_matches(asked.lower(), list(names), n=n * 3, cutoff=0.3)
    return list(dict.fromkeys(names[h] for h in hits))[:n]


def _cited(evidence: dict[str, list[Evidence]], choice: str) -> str:
    top = evidence.get(choice) or []
    return f" [policy: {top[0].title}, {top[0].url}]" if top else ""


def _propose(
    event: IntentReceived,
    parsed: ParsedIntent,
    model: ModelSpec,
    instances: InstanceCatalog,
    settings: Settings,
    evidence: dict[str, list[Evidence]],
    planner: str,
    note: str | None,
) -> PlanProposedData:
    assumptions: list[str] = [note] if note else []
    env = _env(event, parsed, assumptions)
    count = parsed.instance_count or event.data.constraints.instance_count
    if count is None:
        count = settings.default_instance_count.get(env.value, 1)
        assumptions.append(f"instance_count {count}: the default for {env.value}" + _cited(evidence, "count"))
    instance_type = parsed.instance_type or event.data.constraints.instance_type
    if instance_type is None:
        chosen = cheapest_fit(model, instances, lambda name: instance_allowed(name, env, settings))
        instance_type = chosen.name if chosen else "ml.p5.48xlarge"
        assumptions.append(
            f"instance_type {instance_type}: the cheapest whose GPU memory holds {model.memory_gib} GiB "
            f"({model.params_b}B params x {model.dtype} + 20% for KV cache and runtime)" + _cited(evidence, "instance")
        )
    budget = parsed.budget_usd_per_hour or event.data.constraints.budget_usd_per_hour
    if budget is None:
        budget = settings.env_hourly_caps.get(env.value, 15.0)
        assumptions.append(
            f"budget_usd_per_hour {budget}: the {env.value} hourly cap, as none was given" + _cited(evidence, "budget")
        )
    idle = parsed.idle_minutes or settings.idle_pause_minutes.get(env.value)
    if idle is not None and parsed.idle_minutes is None:
        assumptions.append(
            f"idle_pause_minutes {idle}: paused after {idle} minutes without invocations, the {env.value} default"
        )
    config = SageMakerDeploymentConfig(
        model_name=model.id,
        endpoint_name=f"{parsed.app}-{env.value}"[:63].strip("-"),
        instance_type=instance_type,
        instance_count=count,
        rollback_alarms=[],
        budget_usd_per_hour=budget,
        idle_pause_minutes=idle,
    )
    return PlanProposedData(
        intent=event.data.command,
        env=env,
        user_id=event.data.user_id,
        model_id=model.id,
        config=config,
        evidence=_unique([e for choice in ("instance", "count", "budget") for e in evidence.get(choice, [])]),
        assumptions=assumptions,
        planner=planner,
    )


def _unique(items: list[Evidence]) -> list[Evidence]:
    seen: dict[str, Evidence] = {}
    for e in items:
        seen.setdefault(e.url, e)
    return list(seen.values())


def _env(event: IntentReceived, parsed: ParsedIntent, assumptions: list[str]) -> Env:
    said = {e for e in (parsed.env, event.data.env.value if event.data.env else None) if e}
    for env in ("prod", "staging", "dev"):
        if env in said:
            if len(said) > 1:
                assumptions.append(f"env {env}: the command and the request disagree; the stricter applies")
            return Env(env)
    assumptions.append("env staging: none was given")
    return Env.STAGING
