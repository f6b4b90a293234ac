"""What the executor does for each request, as events plus its own record. Pure: no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.executor import sagemaker
from shared.catalog import InstanceCatalog, ModelCatalog
from shared.events import DeploymentAction, DeploymentRequested, DeploymentStatus, DeploymentStatusData, Event
from shared.guardrails import hourly_cost
from shared.models import Action, Env, SageMakerCall, SageMakerDeploymentConfig, SmokeTest, UpdateStrategy

SERVICE = "executor"
Status = Literal["deploying", "deployed", "updating", "rolled_back", "failed", "paused", "deleted"]
CHANGES = ("update", "rollback")


class Deployed(BaseModel):
    """The executor's record of what it created for a plan (kept in its KV bucket)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    plan_id: str
    env: Env
    config: SageMakerDeploymentConfig
    endpoint_live: bool
    settled: bool = False  # InService at least once since the last request: the reconciler may check it
    revision: int = 0  # the model and endpoint config the endpoint serves (sagemaker.names_for)
    revisions: int = 0  # the newest revision made: every one up to it is deleted with the plan
    done: uuid.UUID | None = None  # the last update or rollback request carried out (a redelivery is not redone)
    since: datetime | None = None  # when it last came into service (an idle rule counts from here)
    paused: bool = False  # by a pause (anyone's); a restart, scale or new deploy makes a new record
    deleted: bool = False


class Context:
    def __init__(
        self,
        models: ModelCatalog,
        instances: InstanceCatalog,
        mode: str,
        role_arn: str,
        region: str,
        alarms: sagemaker.AlarmPolicy | None = None,
        hf_token: bool = False,
    ) -> None:
        self.models, self.instances, self.mode = models, instances, mode
        self.role_arn, self.region = role_arn, region
        self.alarms = alarms or sagemaker.AlarmPolicy()
        self.hf_token = hf_token  # a Hugging Face token is configured (never the token itself)


def status(
    cause: Event,
    ctx: Context,
    step: Status,
    endpoint: str,
    calls: list[SageMakerCall],
    reason: str | None = None,
    smoke: SmokeTest | None = None,
    serving: SageMakerDeploymentConfig | None = None,
) -> DeploymentStatus:
    """`serving`: after an update or rollback, the configuration the endpoint serves (and its price)."""
    data = DeploymentStatusData(
        status=step,
        endpoint_name=endpoint,
        mode=ctx.mode,  # type: ignore[arg-type]
        calls=calls,
        reason=reason,
        smoke=smoke,
        config=serving,
        estimated_usd_per_hour=hourly_cost(serving, ctx.instances) if serving is not None else None,
    )
    return cause.caused(DeploymentStatus, step, SERVICE, data)


def start(
    event: DeploymentRequested, ctx: Context, before: Deployed | None = None
) -> tuple[DeploymentStatus, Deployed]:
    """The calls that bring the endpoint up (or resize it, or move it to a new configuration),
    reported as `deploying` (`updating`), and the record once they have worked."""
    d = event.data
    revision = before.revision if before is not None else 0
    if d.operation in CHANGES and before is not None:
        revision = before.revisions + 1
        strategy = d.strategy or UpdateStrategy()
        calls = sagemaker.update_calls(
            d.config,
            d.env,
            event.plan_id,
            revision,
            strategy,
            ctx.models,
            ctx.instances,
            ctx.role_arn,
            ctx.region,
            hf_token=ctx.hf_token,
        )
        record = before.model_copy(
            update={"config": d.config, "revision": revision, "revisions": revision, "settled": False}
        )
        return status(event, ctx, "updating", d.config.endpoint_name, calls), record
    if d.operation == "deploy":
        calls = sagemaker.deploy_calls(
            d.config,
            d.env,
            event.plan_id,
            ctx.models,
            ctx.instances,
            ctx.role_arn,
            ctx.region,
            ctx.alarms,
            hf_token=ctx.hf_token,
        )
        revision = 0
    elif d.operation == "restart":
        calls = [sagemaker.create_endpoint_call(d.config, d.env, event.plan_id, revision)]
    else:
        calls = [sagemaker.scale_call(d.config)]
    made = before.revisions if before is not None else 0
    record = Deployed(
        plan_id=event.plan_id,
        env=d.env,
        config=d.config,
        endpoint_live=True,
        settled=False,
        revision=revision,
        revisions=max(made, revision),
    )
    return status(event, ctx, "deploying", d.config.endpoint_name, calls), record


def finish(event: DeploymentRequested, ctx: Context, check: SageMakerCall, smoke: SmokeTest) -> DeploymentStatus:
    """`deployed`, with the smoke test request made (or, in dry-run, described) and its outcome;
    after an update or rollback, with the configuration it now serves."""
    serving = event.data.config if event.data.operation in CHANGES else None
    return status(event, ctx, "deployed", event.data.config.endpoint_name, [check], smoke=smoke, serving=serving)


def back_call(before: Deployed, plan_id: str) -> SageMakerCall:
    """Point the endpoint at the revision it served before (a smoke test failed on the new one):
    all at once, as the old fleet is still there or is started again."""
    return sagemaker.update_endpoint_call(
        before.config, plan_id, before.revision, UpdateStrategy(shift="all_at_once", wait_seconds=0)
    )


def rolled_back(
    event: DeploymentRequested,
    ctx: Context,
    before: Deployed,
    calls: list[SageMakerCall],
    why: str,
    smoke: SmokeTest | None = None,
) -> DeploymentStatus:
    return status(event, ctx, "rolled_back", before.config.endpoint_name, calls, why, smoke, serving=before.config)


def wind_down(
    event: DeploymentAction, record: Deployed | None, ctx: Context
) -> tuple[DeploymentStatus | None, Deployed | None]:
    """Pause and delete only reduce spend, so they come straight here, not through the guardian."""
    action = event.data.action
    if action not in (Action.PAUSE, Action.DELETE):
        return None, None
    if record is None:  # nothing was ever created for this plan
        return (status(event, ctx, "deleted", "", []) if action is Action.DELETE else None), None
    config = record.config
    if action is Action.PAUSE:
        calls = sagemaker.pause_calls(config) if record.endpoint_live else []
        return status(event, ctx, "paused", config.endpoint_name, calls), record.model_copy(
            update={"endpoint_live": False, "paused": True}
        )
    calls = sagemaker.delete_calls(
        config, event.plan_id, endpoint_exists=record.endpoint_live, revisions=record.revisions
    )
    return status(event, ctx, "deleted", config.endpoint_name, calls), record.model_copy(
        update={"endpoint_live": False, "deleted": True}
    )
