"""Lifecycle commands in words ("pause chatbot-x", "tear down legal-search in staging").

They take the same path as the dashboard's buttons: find the deployment the words name, then
request the action on it. Only the grammar parser reads the text; nothing in it is obeyed
beyond the action, the app, the env and a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from shared.catalog import models
from shared.intent import ParsedIntent, parse
from shared.models import Action
from shared.readmodels import PlanRow

LIFECYCLE_ACTIONS = {
    a.value: a for a in (Action.PAUSE, Action.RESTART, Action.DELETE, Action.SCALE, Action.UPDATE, Action.ROLLBACK)
}
ENVS = ("staging", "prod", "dev")


@dataclass(frozen=True)
class LifecycleRequest:
    action: Action
    app: str
    env: str | None
    instance_count: int | None
    # update: what changes; update and rollback: how traffic moves, as far as the command says
    model_id: str | None = None
    instance_type: str | None = None
    traffic: str | None = None
    traffic_percent: int | None = None
    traffic_wait_seconds: int | None = None


def lifecycle_request(command: str, intent: ParsedIntent | None = None) -> LifecycleRequest | None:
    """The lifecycle request a command makes, or None when it asks for a deployment (or nothing)."""
    intent = intent or parse(command, models())
    if intent.action not in LIFECYCLE_ACTIONS:
        return None
    verb = intent.action
    if not intent.app:
        raise HTTPException(422, f"say which deployment to {verb}, e.g. '{verb} chatbot-x in staging'")
    if intent.action == "scale" and intent.instance_count is None:
        raise HTTPException(422, f"say how many instances, e.g. 'scale {intent.app} to 2 instances'")
    if intent.action == "scale" and intent.instance_count == 0:
        raise HTTPException(
            422, f"an endpoint cannot scale to 0 instances: 'pause {intent.app}' stops it without losing its config"
        )
    model_id = intent.model_id or intent.hub_id  # a Hub model is sized when the request is checked
    if intent.action == "update":
        if model_id is None and intent.model_text and not intent.instance_type and not intent.instance_count:
            raise HTTPException(
                422, f"unknown model {intent.model_text!r}: name a catalog model to update {intent.app} to"
            )
        if model_id is None and intent.instance_type is None and intent.instance_count is None:
            raise HTTPException(
                422, f"say what to change, e.g. 'update {intent.app} to qwen 2.5 7b' or '... on ml.g6e.xlarge'"
            )
    if intent.conflicts:
        raise HTTPException(422, "; ".join(intent.conflicts))
    return LifecycleRequest(
        LIFECYCLE_ACTIONS[verb],
        intent.app,
        intent.env,
        intent.instance_count,
        model_id=model_id if intent.action == "update" else None,
        instance_type=intent.instance_type if intent.action == "update" else None,
        traffic=intent.traffic,
        traffic_percent=intent.traffic_percent,
        traffic_wait_seconds=intent.traffic_wait_seconds,
    )


@dataclass(frozen=True)
class ScheduleCommand:
    """A command that says when a deployment runs: only what it says changes."""

    app: str
    env: str | None
    changes: dict[str, Any]
    verb: str = "keep"


def schedule_request(command: str, intent: ParsedIntent | None = None) -> ScheduleCommand | None:
    """The schedule or idle rule a command sets ("keep chatbot-x running weekdays 8-18 UTC",
    "pause chatbot-x when idle for 2 hours"), or None when it says neither."""
    intent = intent or parse(command, models())
    if intent.action != "schedule":
        return None
    if intent.conflicts:
        raise HTTPException(422, "; ".join(intent.conflicts))
    if not intent.app:
        raise HTTPException(
            422,
            "say which deployment, e.g. 'keep chatbot-x running weekdays 8-18 UTC' "
            "or 'pause chatbot-x when idle for 2 hours'",
        )
    changes: dict[str, Any] = {}
    if intent.schedule is not None:
        changes["schedule"] = intent.schedule
    if intent.idle_minutes is not None:
        changes["idle_pause_minutes"] = intent.idle_minutes
    return ScheduleCommand(intent.app, intent.env, changes)


def endpoint_names(request: LifecycleRequest | ScheduleCommand) -> list[str]:
    envs = [request.env] if request.env else list(ENVS)
    return [request.app, *(f"{request.app}-{env}" for env in envs)]


def choose(request: LifecycleRequest | ScheduleCommand, rows: list[PlanRow], preferred_env: str | None) -> PlanRow:
    """One deployment, or a 404/409 that says how to be more precise."""
    where = f" in {request.env}" if request.env else ""
    if not rows:
        raise HTTPException(404, f"no live deployment of {request.app}{where}: check the name in the deployment list")
    if preferred_env and not request.env and any(r.env == preferred_env for r in rows):
        rows = [r for r in rows if r.env == preferred_env]
    envs = sorted({r.env.value for r in rows})
    if len(envs) > 1:
        raise HTTPException(
            409,
            f"{request.app} runs in {' and '.join(envs)}: say which, "
            f"e.g. '{request.verb if isinstance(request, ScheduleCommand) else request.action.value} "
            f"{request.app} in {envs[0]} ...'",
        )
    return rows[0]  # newest first: an older failed plan for the same endpoint is history
