"""The SageMaker calls for each lifecycle step, built from the validated config. Pure: no I/O.

Names are deterministic from the plan, so a redelivered request names the same resources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from shared.catalog import InstanceCatalog, ModelCatalog
from shared.models import Env, SageMakerCall, SageMakerDeploymentConfig

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


def names_for(config: SageMakerDeploymentConfig, plan_id: str) -> Names:
    suffix = hashlib.sha256(plan_id.encode()).hexdigest()[:8]
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
    n = names_for(config, plan_id)
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
        *alarm_calls(config, alarms or AlarmPolicy()),
        create_endpoint_call(config, env, plan_id),
    ]


def create_endpoint_call(config: SageMakerDeploymentConfig, env: Env, plan_id: str) -> SageMakerCall:
    n = names_for(config, plan_id)
    rollback = [*alarm_names(config), *config.rollback_alarms]
    params: dict[str, object] = {
        "EndpointName": n.endpoint,
        "EndpointConfigName": n.endpoint_config,
        "DeploymentConfig": {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in rollback]}},
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


def delete_calls(config: SageMakerDeploymentConfig, plan_id: str, endpoint_exists: bool) -> list[SageMakerCall]:
    n = names_for(config, plan_id)
    calls = pause_calls(config) if endpoint_exists else []
    return [
        *calls,
        SageMakerCall(operation="DeleteEndpointConfig", params={"EndpointConfigName": n.endpoint_config}),
        SageMakerCall(operation="DeleteModel", params={"ModelName": n.model}),
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
