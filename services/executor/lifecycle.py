"""What the executor does for each request, as events plus its own record. Pure: no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.executor import sagemaker
from shared.catalog import InstanceCatalog, ModelCatalog
from shared.events import DeploymentAction, DeploymentRequested, DeploymentStatus, DeploymentStatusData, Event
from shared.models import Action, Env, SageMakerCall, SageMakerDeploymentConfig, SmokeTest

SERVICE = "executor"
Status = Literal["deploying", "deployed", "failed", "paused", "deleted"]


class Deployed(BaseModel):
    """The executor's record of what it created for a plan (kept in its KV bucket)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    plan_id: str
    env: Env
    config: SageMakerDeploymentConfig
    endpoint_live: bool
    settled: bool = False  # InService at least once since the last request: the reconciler may check it


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
) -> DeploymentStatus:
    data = DeploymentStatusData(
        status=step,
        endpoint_name=endpoint,
        mode=ctx.mode,  # type: ignore[arg-type]
        calls=calls,
        reason=reason,
        smoke=smoke,
    )
    return cause.caused(DeploymentStatus, step, SERVICE, data)


def start(event: DeploymentRequested, ctx: Context) -> tuple[DeploymentStatus, Deployed]:
    """The calls that bring the endpoint up (or resize it), reported as `deploying`."""
    d = event.data
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
    elif d.operation == "restart":
        calls = [sagemaker.create_endpoint_call(d.config, d.env, event.plan_id)]
    else:
        calls = [sagemaker.scale_call(d.config)]
    record = Deployed(plan_id=event.plan_id, env=d.env, config=d.config, endpoint_live=True, settled=False)
    return status(event, ctx, "deploying", d.config.endpoint_name, calls), record


def finish(event: DeploymentRequested, ctx: Context, check: SageMakerCall, smoke: SmokeTest) -> DeploymentStatus:
    """`deployed`, with the smoke test request made (or, in dry-run, described) and its outcome."""
    return status(event, ctx, "deployed", event.data.config.endpoint_name, [check], smoke=smoke)


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
            update={"endpoint_live": False}
        )
    calls = sagemaker.delete_calls(config, event.plan_id, endpoint_exists=record.endpoint_live)
    return status(event, ctx, "deleted", config.endpoint_name, calls), record.model_copy(
        update={"endpoint_live": False}
    )
