"""The SageMaker calls for each lifecycle step, built from the validated config. Pure: no I/O.

Names are deterministic from the plan, so a redelivered request names the same resources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from shared.catalog import InstanceCatalog, ModelCatalog
from shared.models import (
    MAX_UPDATE_SECONDS,
    MIN_UPDATE_SECONDS,
    PROVISION_SECONDS,
    Env,
    SageMakerCall,
    SageMakerDeploymentConfig,
    UpdateStrategy,
)

VARIANT = "AllTraffic"
# What a recorded call shows for the Hugging Face token: the executor puts the token in its place
# only in the request it sends (services/executor/aws.py), never in a call anyone sees.
HF_TOKEN_VAR = "HF_TOKEN"
REDACTED = "REDACTED"


@dataclass(frozen=True)
class AlarmPolicy:
    errors_5xx: float = 5.0
    latency_ms: float = 2000.0


@dataclass(frozen=True)
class Names:
    endpoint: str
    endpoint_config: str
    model: str


def names_for(config: SageMakerDeploymentConfig, plan_id: str, revision: int = 0) -> Names:
    """Revision 0 is what the plan first deployed; each update or rollback makes a new model and
    endpoint config (revision 1, 2, ...) and points the endpoint at it."""
    key = plan_id if revision == 0 else f"{plan_id}:{revision}"
    suffix = hashlib.sha256(key.encode()).hexdigest()[:8]
    stem = config.endpoint_name[: 63 - len(suffix) - 5].rstrip("-")
    return Names(config.endpoint_name, f"{stem}-cfg-{suffix}", f"{stem}-mdl-{suffix}")


def _tags(plan_id: str, config: SageMakerDeploymentConfig, env: Env) -> list[dict[str, str]]:
    return [
        {"Key": "agentops:plan_id", "Value": plan_id},
        {"Key": "agentops:app", "Value": config.endpoint_name.removesuffix(f"-{env.value}")},
        {"Key": "agentops:env", "Value": env.value},
    ]


def alarm_names(config: SageMakerDeploymentConfig) -> list[str]:
    return [f"{config.endpoint_name}-5xx", f"{config.endpoint_name}-latency"]


def alarm_calls(config: SageMakerDeploymentConfig, policy: AlarmPolicy) -> list[SageMakerCall]:
    """The endpoint's own rollback alarms: 5XX errors and model latency, two minutes running."""
    dimensions = [{"Name": "EndpointName", "Value": config.endpoint_name}, {"Name": "VariantName", "Value": VARIANT}]
    errors, latency = alarm_names(config)
    common = {
        "Namespace": "AWS/SageMaker",
        "Dimensions": dimensions,
        "Period": 60,
        "EvaluationPeriods": 2,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    return [
        SageMakerCall(
            service="cloudwatch",
            operation="PutMetricAlarm",
            params={
                "AlarmName": errors,
                "MetricName": "Invocation5XXErrors",
                "Statistic": "Sum",
                "Threshold": policy.errors_5xx,
                **common,
            },
        ),
        SageMakerCall(
            service="cloudwatch",
            operation="PutMetricAlarm",
            params={
                "AlarmName": latency,
                "MetricName": "ModelLatency",
                "Statistic": "Average",
                "Threshold": policy.latency_ms * 1000.0,
                **common,
            },  # ModelLatency is in microseconds
        ),
    ]


def deploy_calls(
    config: SageMakerDeploymentConfig,
    env: Env,
    plan_id: str,
    models: ModelCatalog,
    instances: InstanceCatalog,
    role_arn: str,
    region: str,
    alarms: AlarmPolicy | None = None,
    hf_token: bool = False,
) -> list[SageMakerCall]:
    """`hf_token`: a token is configured, so a gated model's container gets HF_TOKEN (REDACTED
    here; the executor fills it in as it sends the call)."""
    return [
        *model_and_config_calls(config, env, plan_id, 0, models, instances, role_arn, region, hf_token),
        *alarm_calls(config, alarms or AlarmPolicy()),
        create_endpoint_call(config, env, plan_id),
    ]


def model_and_config_calls(
    config: SageMakerDeploymentConfig,
    env: Env,
    plan_id: str,
    revision: int,
    models: ModelCatalog,
    instances: InstanceCatalog,
    role_arn: str,
    region: str,
    hf_token: bool = False,
) -> list[SageMakerCall]:
    """The model and the endpoint config of one revision (nothing is serving them yet)."""
    n = names_for(config, plan_id, revision)
    model = models.get(config.model_name)
    instance = instances.get(config.instance_type)
    container: dict[str, object] = {}
    if model is not None:
        account = models.ecr_accounts.get(region, models.ecr_accounts.get("us-east-1", ""))
        env_vars = dict(model.container.env)
        if instance is not None and instance.gpu_count:
            env_vars["SM_NUM_GPUS"] = str(instance.gpu_count)
        if model.gated and hf_token:
            env_vars[HF_TOKEN_VAR] = REDACTED
        container = {"Image": model.container.image_uri.format(account=account, region=region), "Environment": env_vars}
    tags = _tags(plan_id, config, env)
    return [
        SageMakerCall(
            operation="CreateModel",
            params={"ModelName": n.model, "ExecutionRoleArn": role_arn, "PrimaryContainer": container, "Tags": tags},
        ),
        SageMakerCall(
            operation="CreateEndpointConfig",
            params={
                "EndpointConfigName": n.endpoint_config,
                "ProductionVariants": [
                    {
                        "VariantName": VARIANT,
                        "ModelName": n.model,
                        "InitialInstanceCount": config.instance_count,
                        "InstanceType": config.instance_type,
                        "InitialVariantWeight": 1.0,
                    }
                ],
                "Tags": tags,
            },
        ),
    ]


def update_calls(
    config: SageMakerDeploymentConfig,
    env: Env,
    plan_id: str,
    revision: int,
    strategy: UpdateStrategy,
    models: ModelCatalog,
    instances: InstanceCatalog,
    role_arn: str,
    region: str,
    hf_token: bool = False,
) -> list[SageMakerCall]:
    """A new revision's model and config, then the guarded switch of the endpoint to it."""
    return [
        *model_and_config_calls(config, env, plan_id, revision, models, instances, role_arn, region, hf_token),
        update_endpoint_call(config, plan_id, revision, strategy),
    ]


def update_endpoint_call(
    config: SageMakerDeploymentConfig, plan_id: str, revision: int, strategy: UpdateStrategy
) -> SageMakerCall:
    """`UpdateEndpoint` with SageMaker's deployment guardrails: blue/green, traffic shifted all at
    once, to a canary first, or in linear steps, each step held while the endpoint's alarms watch;
    an alarm in that time rolls the endpoint back to the configuration it had."""
    routing: dict[str, object] = {"Type": strategy.shift.upper(), "WaitIntervalInSeconds": strategy.wait_seconds}
    size = {"Type": "CAPACITY_PERCENT", "Value": strategy.percent}
    if strategy.shift == "canary":
        routing["CanarySize"] = size
    elif strategy.shift == "linear":
        routing["LinearStepSize"] = size
    timeout = min(MAX_UPDATE_SECONDS, max(MIN_UPDATE_SECONDS, strategy.bake_seconds() + PROVISION_SECONDS))
    return SageMakerCall(
        operation="UpdateEndpoint",
        params={
            "EndpointName": config.endpoint_name,
            "EndpointConfigName": names_for(config, plan_id, revision).endpoint_config,
            "RetainAllVariantProperties": False,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": routing,
                    # the old fleet stays this long after the last shift, for a fast way back
                    "TerminationWaitInSeconds": min(strategy.wait_seconds, 600),
                    "MaximumExecutionTimeoutInSeconds": timeout,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in rollback_alarms(config)]},
            },
        },
    )


def rollback_alarms(config: SageMakerDeploymentConfig) -> list[str]:
    return [*alarm_names(config), *config.rollback_alarms]


def create_endpoint_call(config: SageMakerDeploymentConfig, env: Env, plan_id: str, revision: int = 0) -> SageMakerCall:
    n = names_for(config, plan_id, revision)
    params: dict[str, object] = {
        "EndpointName": n.endpoint,
        "EndpointConfigName": n.endpoint_config,
        "DeploymentConfig": {
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in rollback_alarms(config)]}
        },
        "Tags": _tags(plan_id, config, env),
    }
    return SageMakerCall(operation="CreateEndpoint", params=params)


def scale_call(config: SageMakerDeploymentConfig) -> SageMakerCall:
    return SageMakerCall(
        operation="UpdateEndpointWeightsAndCapacities",
        params={
            "EndpointName": config.endpoint_name,
            "DesiredWeightsAndCapacities": [{"VariantName": VARIANT, "DesiredInstanceCount": config.instance_count}],
        },
    )


def pause_calls(config: SageMakerDeploymentConfig) -> list[SageMakerCall]:
    # The endpoint is what costs money; the model and endpoint config stay for a restart.
    return [SageMakerCall(operation="DeleteEndpoint", params={"EndpointName": config.endpoint_name})]


def delete_calls(
    config: SageMakerDeploymentConfig, plan_id: str, endpoint_exists: bool, revisions: int = 0
) -> list[SageMakerCall]:
    """The endpoint, then every revision's endpoint config and model (0 to `revisions`)."""
    names = [names_for(config, plan_id, r) for r in range(revisions + 1)]
    calls = pause_calls(config) if endpoint_exists else []
    return [
        *calls,
        *(
            SageMakerCall(operation="DeleteEndpointConfig", params={"EndpointConfigName": n.endpoint_config})
            for n in names
        ),
        *(SageMakerCall(operation="DeleteModel", params={"ModelName": n.model}) for n in names),
        SageMakerCall(service="cloudwatch", operation="DeleteAlarms", params={"AlarmNames": alarm_names(config)}),
    ]


SMOKE_PROMPT = "Reply with the word OK."


def smoke_call(config: SageMakerDeploymentConfig, models: ModelCatalog) -> SageMakerCall:
    """One tiny request in the container's wire format: TGI and DJL LMI take
    {"inputs", "parameters"} at /invocations; a NIM takes an OpenAI chat completion."""
    model = models.get(config.model_name)
    body: dict[str, object]
    if model is not None and model.container.framework == "nim":
        body = {"model": model.id, "messages": [{"role": "user", "content": SMOKE_PROMPT}], "max_tokens": 8}
    else:
        body = {"inputs": SMOKE_PROMPT, "parameters": {"max_new_tokens": 8}}
    return SageMakerCall(
        service="sagemaker-runtime",
        operation="InvokeEndpoint",
        params={
            "EndpointName": config.endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(body),
        },
    )
