"""Updates and rollbacks of a live endpoint, as SageMaker sees them: the executor driven through
botocore's Stubber (real parameter validation against the service model, scripted answers),
because moto implements neither UpdateEndpoint nor a real InvokeEndpoint.

Each test scripts what SageMaker answers and checks the calls made, in order, and the status
the plan ends in: deployed on the new configuration, rolled back (by SageMaker's alarms, silently,
or after a failed smoke test) with the reason, or failed."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from botocore.validate import ParamValidator

from services.executor.aws import SageMakerBackend
from services.executor.lifecycle import Context, Deployed
from services.executor.sagemaker import names_for, update_calls
from services.executor.service import Executor
from shared import catalog
from shared.events import DeploymentRequested, DeploymentRequestedData, DeploymentStatus, Event
from shared.guardrails import hourly_cost
from shared.kv import MemoryStore
from shared.models import Env, SageMakerDeploymentConfig, UpdateStrategy
from shared.settings import Settings

PLAN = "plan-upd"
OLD = SageMakerDeploymentConfig(
    model_name="Qwen/Qwen2.5-7B-Instruct",
    endpoint_name="chatbot-x-prod",
    instance_type="ml.g6.xlarge",
    instance_count=2,
    rollback_alarms=["team-slo"],
    budget_usd_per_hour=50,
)
NEW = OLD.model_copy(update={"model_name": "mistralai/Mistral-Nemo-Instruct-2407", "instance_type": "ml.g6e.xlarge"})
ARN = f"arn:aws:sagemaker:us-east-1:1:endpoint/{OLD.endpoint_name}"
CANARY = UpdateStrategy(shift="canary", percent=10, wait_seconds=600)
MISSING = {"service_error_code": "ValidationException", "service_message": "Could not find it."}


class Published(list[Event]):
    async def __call__(self, event: Event) -> None:
        self.append(event)

    def statuses(self) -> list[DeploymentStatus]:
        return [e for e in self if isinstance(e, DeploymentStatus)]


def backend() -> tuple[SageMakerBackend, Stubber, Stubber]:
    keys = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    sm, cw = boto3.client("sagemaker", **keys), boto3.client("cloudwatch", **keys)
    aws = SageMakerBackend(Settings(poll_initial_seconds=0.01, deploy_timeout_seconds=30), sm, cw)
    aws.sleep = lambda _s: None
    aws._runtime = boto3.client("sagemaker-runtime", **keys)
    return aws, Stubber(sm), Stubber(aws._runtime)


def request(strategy: UpdateStrategy = CANARY, operation: str = "update") -> DeploymentRequested:
    instances = catalog.instances()
    data = DeploymentRequestedData(
        operation=operation,  # type: ignore[arg-type]
        env=Env.PROD,
        config=NEW,
        estimated_usd_per_hour=hourly_cost(NEW, instances) or 0.0,
        previous=OLD,
        previous_usd_per_hour=hourly_cost(OLD, instances),
        strategy=strategy,
    )
    return DeploymentRequested(plan_id=PLAN, actor="guardian", data=data)


def executor(aws: SageMakerBackend) -> tuple[Executor, MemoryStore[Deployed], Published]:
    records: MemoryStore[Deployed] = MemoryStore()
    ctx = Context(catalog.models(), catalog.instances(), "aws", "arn:aws:iam::1:role/x", "us-east-1")
    published = Published()
    return Executor(records, published, ctx, aws), records, published


def described(status: str, config: str, **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": OLD.endpoint_name,
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-11-27T00:00:00Z",
        "LastModifiedTime": "2026-11-27T00:00:00Z",
        **extra,
    }


OLD_CFG, NEW_CFG = names_for(OLD, PLAN, 0).endpoint_config, names_for(NEW, PLAN, 1).endpoint_config


def script_update(sm: Stubber, strategy: UpdateStrategy = CANARY) -> dict[str, Any]:
    """What the executor asks before SageMaker starts the update: the new model and config made
    (each after a Describe that finds none), ownership, then UpdateEndpoint. Returns its params."""
    calls = update_calls(
        NEW, Env.PROD, PLAN, 1, strategy, catalog.models(), catalog.instances(), "arn:aws:iam::1:role/x", "us-east-1"
    )
    model, config, update = calls
    sm.add_client_error("describe_model", **MISSING)
    sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, expected_params=model.params)
    sm.add_client_error("describe_endpoint_config", **MISSING)
    sm.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"},
        expected_params=config.params,
    )
    sm.add_response("describe_endpoint", described("InService", OLD_CFG))  # whose is it?
    sm.add_response("list_tags", {"Tags": [{"Key": "agentops:plan_id", "Value": PLAN}]}, {"ResourceArn": ARN})
    sm.add_response("describe_endpoint", described("InService", OLD_CFG))  # not already updating to it
    sm.add_response("update_endpoint", {"EndpointArn": ARN}, expected_params=update.params)
    return update.params


async def run(ex: Executor, records: MemoryStore[Deployed], event: DeploymentRequested) -> None:
    await records.put(PLAN, Deployed(plan_id=PLAN, env=Env.PROD, config=OLD, endpoint_live=True, settled=True))
    await ex.on_requested(event)


def answer(runtime: Stubber, ok: bool) -> None:
    if ok:
        body = StreamingBody(io.BytesIO(b'[{"generated_text":"OK"}]'), 25)
        runtime.add_response("invoke_endpoint", {"Body": body, "ContentType": "application/json"}, {**ANY_INVOKE})
    else:
        runtime.add_client_error("invoke_endpoint", "ModelError", "Received server error (500) from primary", 424)


ANY_INVOKE = {"EndpointName": OLD.endpoint_name, "ContentType": ANY, "Accept": ANY, "Body": ANY}


@pytest.mark.parametrize(
    ("strategy", "routing"),
    [
        (
            UpdateStrategy(shift="all_at_once", wait_seconds=120),
            {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120},
        ),
        (
            CANARY,
            {"Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
        ),
        (
            UpdateStrategy(shift="linear", percent=25, wait_seconds=300),
            {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
        ),
    ],
)
async def test_an_update_goes_blue_green_with_the_strategy_and_lands_on_the_new_config(
    strategy: UpdateStrategy, routing: dict[str, Any]
) -> None:
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    params = script_update(sm, strategy)
    sm.add_response("describe_endpoint", described("Updating", OLD_CFG))
    sm.add_response("describe_endpoint", described("InService", NEW_CFG))
    answer(runtime, ok=True)
    with sm, runtime:
        await run(ex, records, request(strategy))
    sm.assert_no_pending_responses()
    runtime.assert_no_pending_responses()
    policy = params["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == routing
    assert 600 <= policy["MaximumExecutionTimeoutInSeconds"] <= 14400
    alarms = [a["AlarmName"] for a in params["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ["chatbot-x-prod-5xx", "chatbot-x-prod-latency", "team-slo"]
    assert params["EndpointConfigName"] == NEW_CFG != OLD_CFG
    statuses = published.statuses()
    assert [s.data.status for s in statuses] == ["updating", "deployed"]
    assert statuses[-1].data.config == NEW and statuses[-1].data.smoke and statuses[-1].data.smoke.outcome == "passed"
    record = await records.get(PLAN)
    assert record is not None and record.config == NEW and record.revision == 1 == record.revisions


def test_every_update_call_is_valid_for_botocore() -> None:
    validator = ParamValidator()
    sm = boto3.client("sagemaker", region_name="us-east-1").meta.service_model
    for shift in ("all_at_once", "canary", "linear"):
        strategy = UpdateStrategy(shift=shift, percent=20, wait_seconds=900)  # type: ignore[arg-type]
        for call in update_calls(
            NEW,
            Env.PROD,
            PLAN,
            3,
            strategy,
            catalog.models(),
            catalog.instances(),
            "arn:aws:iam::1:role/x",
            "us-east-1",
        ):
            report = validator.validate(call.params, sm.operation_model(call.operation).input_shape)
            assert not report.has_errors(), (call.operation, report.generate_report())


async def test_alarms_that_fire_during_the_canary_roll_the_update_back() -> None:
    """SageMaker's rollback is silent: the endpoint returns to InService on its old config."""
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    script_update(sm)
    sm.add_response("describe_endpoint", described("Updating", OLD_CFG))
    sm.add_response("describe_endpoint", described("RollingBack", OLD_CFG))
    sm.add_response(
        "describe_endpoint",
        described("InService", OLD_CFG, FailureReason="Alarm chatbot-x-prod-5xx went into ALARM during the canary"),
    )
    with sm, runtime:
        await run(ex, records, request())
    sm.assert_no_pending_responses()
    last = published.statuses()[-1]
    assert last.data.status == "rolled_back" and last.data.config == OLD
    assert "chatbot-x-prod-5xx" in (last.data.reason or "") and OLD_CFG in (last.data.reason or "")
    assert last.data.estimated_usd_per_hour == hourly_cost(OLD, catalog.instances())
    record = await records.get(PLAN)
    assert record is not None and record.config == OLD and record.revision == 0 and record.revisions == 1


async def test_inservice_on_the_old_config_without_a_reason_is_still_a_rollback() -> None:
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    script_update(sm)
    sm.add_response("describe_endpoint", described("InService", OLD_CFG))
    with sm, runtime:
        await run(ex, records, request())
    last = published.statuses()[-1]
    assert last.data.status == "rolled_back" and "rolled the update back" in (last.data.reason or "")


async def test_a_failed_smoke_test_on_the_new_config_rolls_back_to_the_old_one() -> None:
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    script_update(sm)
    sm.add_response("describe_endpoint", described("InService", NEW_CFG))
    answer(runtime, ok=False)
    # back to revision 0, all at once: ownership, not already there, UpdateEndpoint, then wait
    sm.add_response("describe_endpoint", described("InService", NEW_CFG))
    sm.add_response("list_tags", {"Tags": [{"Key": "agentops:plan_id", "Value": PLAN}]}, {"ResourceArn": ARN})
    sm.add_response("describe_endpoint", described("InService", NEW_CFG))
    sm.add_response("update_endpoint", {"EndpointArn": ARN}, {"EndpointName": OLD.endpoint_name, **ANY_BACK})
    sm.add_response("describe_endpoint", described("Updating", NEW_CFG))
    sm.add_response("describe_endpoint", described("InService", OLD_CFG))
    with sm, runtime:
        await run(ex, records, request())
    sm.assert_no_pending_responses()
    last = published.statuses()[-1]
    assert last.data.status == "rolled_back" and last.data.config == OLD
    assert "smoke test failed" in (last.data.reason or "") and "ModelError" in (last.data.reason or "")
    back = last.data.calls[-1]
    assert back.operation == "UpdateEndpoint" and back.params["EndpointConfigName"] == OLD_CFG


ANY_BACK = {"EndpointConfigName": OLD_CFG, "RetainAllVariantProperties": False, "DeploymentConfig": ANY}


async def test_an_update_sagemaker_refuses_leaves_the_endpoint_as_it_was() -> None:
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    sm.add_client_error("describe_model", **MISSING)
    sm.add_client_error("create_model", "ResourceLimitExceeded", "account-level limit of 0 for ml.g6e.xlarge")
    with sm, runtime:
        await run(ex, records, request())
    last = published.statuses()[-1]
    assert last.data.status == "rolled_back" and "quota" in (last.data.reason or "")
    assert last.data.config == OLD


async def test_an_endpoint_that_ends_failed_fails_the_plan_with_sagemakers_reason() -> None:
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    script_update(sm)
    sm.add_response(
        "describe_endpoint", described("UpdateRollbackFailed", OLD_CFG, FailureReason="could not restore capacity")
    )
    with sm, runtime:
        await run(ex, records, request())
    last = published.statuses()[-1]
    assert last.data.status == "failed" and "could not restore capacity" in (last.data.reason or "")


async def test_a_redelivered_update_is_not_started_twice() -> None:
    """The first delivery started it (the endpoint is Updating towards the new config): the
    second waits for it instead of sending UpdateEndpoint again."""
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    sm.add_response(
        "describe_model",
        {"ModelName": "m", "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m", "CreationTime": "2026-11-27T00:00:00Z"},
    )
    sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": NEW_CFG,
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
            "CreationTime": "2026-11-27T00:00:00Z",
        },
    )
    sm.add_response("describe_endpoint", described("Updating", OLD_CFG))
    sm.add_response("list_tags", {"Tags": [{"Key": "agentops:plan_id", "Value": PLAN}]}, {"ResourceArn": ARN})
    pending = {"PendingDeploymentSummary": {"EndpointConfigName": NEW_CFG, "StartTime": "2026-11-27T00:00:00Z"}}
    sm.add_response("describe_endpoint", described("Updating", OLD_CFG, **pending))
    sm.add_response("describe_endpoint", described("InService", NEW_CFG))
    answer(runtime, ok=True)
    with sm, runtime:
        await run(ex, records, request())
    sm.assert_no_pending_responses()
    assert published.statuses()[-1].data.status == "deployed"


async def test_another_plans_endpoint_is_never_updated() -> None:
    aws, sm, runtime = backend()
    ex, records, published = executor(aws)
    sm.add_client_error("describe_model", **MISSING)
    sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"})
    sm.add_client_error("describe_endpoint_config", **MISSING)
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"})
    sm.add_response("describe_endpoint", described("InService", OLD_CFG))
    sm.add_response("list_tags", {"Tags": [{"Key": "agentops:plan_id", "Value": "someone-else"}]}, {"ResourceArn": ARN})
    with sm, runtime:
        await run(ex, records, request())
    sm.assert_no_pending_responses()  # no update_endpoint was scripted, and none was sent
    last = published.statuses()[-1]
    assert last.data.status == "rolled_back" and "belongs to plan someone-else" in (last.data.reason or "")


async def test_dry_run_describes_the_update_and_the_smoke_test() -> None:
    records: MemoryStore[Deployed] = MemoryStore()
    ctx = Context(catalog.models(), catalog.instances(), "dry-run", "arn:aws:iam::1:role/x", "us-east-1")
    published = Published()
    ex = Executor(records, published, ctx, None)
    event = request()
    await run(ex, records, event)
    updating, deployed = published.statuses()
    assert [c.operation for c in updating.data.calls] == ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint"]
    assert deployed.data.smoke and deployed.data.smoke.outcome == "described"
    assert deployed.data.config == NEW
    again = Published()
    ex.publish = again
    await ex.on_requested(event)  # the same request delivered again: already carried out
    assert again == []
    body = json.loads(deployed.data.calls[0].params["Body"])
    assert body["parameters"]["max_new_tokens"] == 8
