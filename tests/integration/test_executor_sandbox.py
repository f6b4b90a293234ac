"""The executor's boto3 path against a moto server (sandbox) and botocore's Stubber."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import boto3
import psycopg
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from services.executor.aws import DeployFailed, SageMakerBackend
from services.executor.lifecycle import Context, Deployed
from services.executor.sagemaker import (
    SMOKE_PROMPT,
    AlarmPolicy,
    alarm_names,
    delete_calls,
    deploy_calls,
    names_for,
    scale_call,
    smoke_call,
)
from services.executor.service import Executor
from shared import catalog
from shared.broker import ALL_EVENTS
from shared.events import DeploymentRequested, DeploymentRequestedData
from shared.kv import MemoryStore
from shared.models import Env, SageMakerDeploymentConfig
from shared.settings import Settings
from tests.infra import connect, settled, signed
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration
CONFIG = SageMakerDeploymentConfig(
    model_name="meta-llama/Llama-3.1-8B-Instruct",
    endpoint_name="chatbot-x-staging",
    instance_type="ml.g6.xlarge",
    instance_count=1,
    rollback_alarms=["team-slo-alarm"],
    budget_usd_per_hour=15,
)


def aws(url: str, service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=url)


def sandbox_settings(nats_url: str, database_url: str, moto_url: str, **overrides: Any) -> Settings:
    """The whole system with the executor in sandbox mode against the test's moto server."""
    return system_settings(
        nats_url,
        database_url,
        executor_mode="sandbox",
        sagemaker_endpoint_url=moto_url,
        poll_initial_seconds=0.05,
        **overrides,
    )


@pytest.fixture
async def sandbox(nats_url: str, database_url: str, moto_url: str) -> AsyncIterator[System]:
    settings = sandbox_settings(nats_url, database_url, moto_url)
    async with running(settings) as client:
        yield System(client, settings)


def test_dry_run_calls_match_botocore_service_models() -> None:
    models, instances = catalog.models(), catalog.instances()
    calls = [
        *deploy_calls(CONFIG, Env.STAGING, "plan-1", models, instances, "arn:aws:iam::1:role/x", "us-east-1"),
        scale_call(CONFIG),
        *delete_calls(CONFIG, "plan-1", endpoint_exists=True),
    ]
    calls.append(smoke_call(CONFIG, models))
    validator = ParamValidator()
    services = ("sagemaker", "cloudwatch", "sagemaker-runtime")
    shapes = {s: boto3.client(s, region_name="us-east-1").meta.service_model for s in services}
    for call in calls:
        shape = shapes[call.service].operation_model(call.operation).input_shape
        report = validator.validate(call.params, shape)
        assert not report.has_errors(), (call.operation, report.generate_report())
    create = next(c for c in calls if c.operation == "CreateEndpoint")
    alarms = [a["AlarmName"] for a in create.params["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == ["chatbot-x-staging-5xx", "chatbot-x-staging-latency", "team-slo-alarm"]
    model = next(c for c in calls if c.operation == "CreateModel")
    assert model.params["PrimaryContainer"]["Environment"]["SM_NUM_GPUS"] == "1"
    assert model.params["PrimaryContainer"]["Image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")


async def test_the_whole_lifecycle_in_the_sandbox(sandbox: System, moto_url: str) -> None:
    sm, cw = aws(moto_url, "sagemaker"), aws(moto_url, "cloudwatch")
    plan_id = (await sandbox.command("deploy llama-3.1 8B for sandbox-bot", env="staging"))["plan_id"]
    plan = await sandbox.wait_status(plan_id, "deployed")
    assert plan["details"]["mode"] == "sandbox"
    # smoke-tested once InService (moto answers any invocation: the sandbox shows the path, not a model)
    assert plan["details"]["smoke"]["outcome"] == "passed" and plan["details"]["smoke"]["latency_ms"] >= 0
    assert plan["details"]["sagemaker_calls"][-1]["operation"] == "InvokeEndpoint"
    endpoint = plan["artifact"]["endpoint_name"]
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    assert len(sm.list_models()["Models"]) == 1 and len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    alarms = {a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]}
    assert alarms == {f"{endpoint}-5xx", f"{endpoint}-latency"}

    await sandbox.client.post(f"/api/deployments/{plan_id}/pause")
    await sandbox.wait_status(plan_id, "paused")
    assert sm.list_endpoints()["Endpoints"] == []  # nothing left that costs money
    assert len(sm.list_models()["Models"]) == 1 and len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1

    await sandbox.client.post(f"/api/deployments/{plan_id}/restart")
    await sandbox.wait_status(plan_id, "deployed")
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"

    await sandbox.client.post(f"/api/deployments/{plan_id}/scale", json={"instance_count": 2})
    for _ in range(100):
        variant = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
        if variant.get("DesiredInstanceCount") == 2:
            break
        await asyncio.sleep(0.05)
    assert variant["DesiredInstanceCount"] == 2

    await sandbox.client.delete(f"/api/deployments/{plan_id}")
    await sandbox.wait_status(plan_id, "deleted")
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == [] and cw.describe_alarms()["MetricAlarms"] == []
    assert (await sandbox.plan(plan_id))["status"] == "deleted"  # the record stays for the audit


async def test_a_request_delivered_three_times_creates_everything_once(sandbox: System, moto_url: str) -> None:
    sm = aws(moto_url, "sagemaker")
    config = CONFIG.model_copy(update={"endpoint_name": "triple-staging"})
    event = DeploymentRequested(
        plan_id="triple",
        actor="guardian",
        data=DeploymentRequestedData(env=Env.STAGING, config=config, estimated_usd_per_hour=1.13),
    )
    nc = await connect(sandbox.settings.nats_url)
    sent = signed(event, "guardian")
    for i in range(3):  # the same event, as redeliveries after the broker's dedup window would arrive
        await nc.jetstream().publish(
            event.subject, sent["message"], headers={**sent["headers"], "Nats-Msg-Id": f"r{i}"}
        )
    await nc.close()
    await settled(sandbox.settings.nats_url)  # the executor handled all three
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["triple-staging"]
    assert len(sm.list_models()["Models"]) == 1 and len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_a_crash_after_create_model_is_picked_up_where_it_stopped(moto_url: str) -> None:
    settings = Settings(executor_mode="sandbox", sagemaker_endpoint_url=moto_url, poll_initial_seconds=0.01)
    calls = deploy_calls(
        CONFIG, Env.STAGING, "crash", catalog.models(), catalog.instances(), "arn:aws:iam::1:role/x", "us-east-1"
    )
    backend = SageMakerBackend(settings)
    backend.run(calls[:1])  # the process died right after CreateModel
    backend.run(calls)  # the redelivery runs the whole request again
    sm = aws(moto_url, "sagemaker")
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [names_for(CONFIG, "crash").model]
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1 and len(sm.list_endpoints()["Endpoints"]) == 1
    assert backend.wait_in_service(CONFIG.endpoint_name).status == "InService"


def stubbed() -> tuple[SageMakerBackend, Stubber]:
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    cw = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    backend = SageMakerBackend(Settings(poll_initial_seconds=0.01, deploy_timeout_seconds=5), sm, cw)
    backend.sleep = lambda _s: None
    return backend, Stubber(sm)


MISSING_MODEL = {"service_error_code": "ValidationException", "service_message": "Could not find model 'x'."}
ONE_CALL = deploy_calls(
    CONFIG, Env.STAGING, "p", catalog.models(), catalog.instances(), "arn:aws:iam::1:role/x", "us-east-1", AlarmPolicy()
)[:1]


def test_throttling_is_retried_until_it_succeeds() -> None:
    backend, stub = stubbed()
    stub.add_client_error("describe_model", **MISSING_MODEL)
    stub.add_client_error("create_model", service_error_code="ThrottlingException", http_status_code=400)
    stub.add_client_error("describe_model", **MISSING_MODEL)
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/x"})
    with stub:
        backend.run(ONE_CALL)
    stub.assert_no_pending_responses()


def test_a_used_up_quota_fails_with_a_reason() -> None:
    backend, stub = stubbed()
    stub.add_client_error("describe_model", **MISSING_MODEL)
    stub.add_client_error(
        "create_model", service_error_code="ResourceLimitExceeded", service_message="account-level limit of 0"
    )
    with stub, pytest.raises(DeployFailed, match="quota"):
        backend.run(ONE_CALL)


def test_an_endpoint_that_fails_reports_sagemakers_reason() -> None:
    backend, stub = stubbed()
    described = {
        "EndpointName": "e",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e",
        "EndpointConfigName": "c",
        "CreationTime": "2026-11-24T00:00:00Z",
        "LastModifiedTime": "2026-11-24T00:00:00Z",
    }
    stub.add_response("describe_endpoint", {**described, "EndpointStatus": "Creating"})
    stub.add_response(
        "describe_endpoint",
        {
            **described,
            "EndpointStatus": "Failed",
            "FailureReason": "The primary container did not pass the ping health check.",
        },
    )
    with stub:
        outcome = backend.wait_in_service("e")
    assert outcome.status == "Failed" and "ping health check" in (outcome.reason or "")


def test_aws_mode_refuses_to_start_without_execute_and_a_role() -> None:
    with pytest.raises(ValueError, match="EXECUTE=true"):
        Settings(executor_mode="aws")
    with pytest.raises(ValueError, match="real IAM role"):
        Settings(executor_mode="aws", execute=True)
    with pytest.raises(ValueError, match="SAGEMAKER_ENDPOINT_URL"):
        Settings(executor_mode="sandbox")


async def test_an_endpoint_deleted_outside_agentops_is_reported_as_drift(
    nats_url: str, database_url: str, moto_url: str
) -> None:
    settings = sandbox_settings(nats_url, database_url, moto_url, reconcile_seconds=0.2)
    async with running(settings) as client:
        system = System(client, settings)
        plan_id = (await system.command("deploy llama-3.1 8B for drift-bot", env="staging"))["plan_id"]
        plan = await system.wait_status(plan_id, "deployed")
        aws(moto_url, "sagemaker").delete_endpoint(EndpointName=plan["artifact"]["endpoint_name"])
        drifted = await system.wait_status(plan_id, "failed", timeout=10)
    assert "drift" in drifted["details"]["reason"] and "deleted outside AgentOps" in drifted["details"]["reason"]


def test_an_endpoint_belongs_to_one_plan_which_another_can_neither_take_nor_remove(moto_url: str) -> None:
    """Two plans for one app and env: the second never adopts the first one's endpoint (its
    create fails naming the owner), and its delete removes only what it made itself."""
    settings = Settings(executor_mode="sandbox", sagemaker_endpoint_url=moto_url, poll_initial_seconds=0.01)
    backend = SageMakerBackend(settings)
    role = "arn:aws:iam::1:role/x"
    first = deploy_calls(CONFIG, Env.STAGING, "plan-a", catalog.models(), catalog.instances(), role, "us-east-1")
    backend.run(first, owner="plan-a")
    assert backend.wait_in_service(CONFIG.endpoint_name).status == "InService"
    backend.run(first, owner="plan-a")  # its own request delivered again carries on
    second = deploy_calls(CONFIG, Env.STAGING, "plan-b", catalog.models(), catalog.instances(), role, "us-east-1")
    with pytest.raises(DeployFailed, match="chatbot-x-staging belongs to plan plan-a"):
        backend.run(second, owner="plan-b")
    with pytest.raises(DeployFailed, match="belongs to plan plan-a"):
        backend.run([scale_call(CONFIG.model_copy(update={"instance_count": 2}))], owner="plan-b")
    backend.run(delete_calls(CONFIG, "plan-b", endpoint_exists=True), owner="plan-b")
    sm, cw = aws(moto_url, "sagemaker"), aws(moto_url, "cloudwatch")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [CONFIG.endpoint_name]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [names_for(CONFIG, "plan-a").model]
    assert {a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]} >= set(alarm_names(CONFIG))
    backend.run(delete_calls(CONFIG, "plan-a", endpoint_exists=True), owner="plan-a")  # the owner's delete does
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []


def test_an_endpoint_made_outside_agentops_is_never_adopted(moto_url: str) -> None:
    settings = Settings(executor_mode="sandbox", sagemaker_endpoint_url=moto_url, poll_initial_seconds=0.01)
    backend = SageMakerBackend(settings)
    calls = deploy_calls(
        CONFIG, Env.STAGING, "p", catalog.models(), catalog.instances(), "arn:aws:iam::1:role/x", "us-east-1"
    )
    untagged = [
        c.model_copy(update={"params": {k: v for k, v in c.params.items() if k != "Tags"}})
        for c in calls
        if c.service == "sagemaker"
    ]
    backend.run(untagged)  # someone's hand-made endpoint of the same name
    with pytest.raises(DeployFailed, match="no AgentOps plan made it"):
        backend.run(calls, owner="p")


async def test_the_reconciler_reports_endpoints_that_no_live_plan_has(moto_url: str) -> None:
    settings = Settings(executor_mode="sandbox", sagemaker_endpoint_url=moto_url, poll_initial_seconds=0.01)
    backend = SageMakerBackend(settings)
    role = "arn:aws:iam::1:role/x"
    live, left = CONFIG, CONFIG.model_copy(update={"endpoint_name": "forgotten-staging"})
    for config, plan in ((live, "live-plan"), (left, "gone-plan")):
        backend.run(deploy_calls(config, Env.STAGING, plan, catalog.models(), catalog.instances(), role, "us-east-1"))
    # an endpoint someone made by hand, without AgentOps tags, is not ours to report
    aws(moto_url, "sagemaker").create_endpoint(
        EndpointName="hand-made", EndpointConfigName=names_for(live, "live-plan").endpoint_config
    )
    records: MemoryStore[Deployed] = MemoryStore()
    await records.put("live-plan", Deployed(plan_id="live-plan", env=Env.STAGING, config=live, endpoint_live=True))
    ctx = Context(catalog.models(), catalog.instances(), "sandbox", role, "us-east-1")

    async def nowhere(event: object) -> None:  # finding the unowned publishes nothing
        return None

    executor = Executor(records, nowhere, ctx, backend)
    assert await executor.unowned() == [("forgotten-staging", "gone-plan")]
    await records.put("gone-plan", Deployed(plan_id="gone-plan", env=Env.STAGING, config=left, endpoint_live=True))
    assert await executor.unowned() == []


async def test_a_gated_model_gets_its_token_from_secrets_manager_and_nothing_records_it(
    nats_url: str, database_url: str, moto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The container is given the token; every event on the bus, every table, every API answer
    and every log line (botocore's request bodies at debug level included) shows REDACTED."""
    token = "hf_" + secrets.token_hex(20)
    arn = aws(moto_url, "secretsmanager").create_secret(
        Name="agentops/hf-token", SecretString=json.dumps({"HF_TOKEN": token})
    )["ARN"]
    settings = sandbox_settings(nats_url, database_url, moto_url, hf_token_secret_arn=arn, log_level="debug")
    caplog.set_level(logging.DEBUG)
    seen: list[bytes] = []
    nc = await connect(nats_url)

    async def keep(msg: Any) -> None:
        seen.append(msg.data + json.dumps(msg.headers or {}).encode())

    sub = await nc.subscribe(ALL_EVENTS, cb=keep)
    try:
        async with running(settings) as client:
            system = System(client, settings)
            plan_id = (await system.command("deploy llama-3.1 8B for gated-bot", env="staging"))["plan_id"]
            await system.wait_status(plan_id, "deployed")
            await system.settled()
            answers = [
                (await client.get(path)).text
                for path in (f"/api/deployments/{plan_id}", f"/api/deployments/{plan_id}/history", "/api/audit")
            ]
    finally:
        await sub.unsubscribe()
        await nc.close()
    sm = aws(moto_url, "sagemaker")
    (model,) = sm.list_models()["Models"]
    assert sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]["Environment"]["HF_TOKEN"] == token
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        stored = "".join(str(r[0]) for t in tables for r in conn.execute(f'SELECT t::text FROM "{t}" t'))
    assert token not in stored and "REDACTED" in stored
    assert seen and not [m for m in seen if token.encode() in m]
    assert any(b"REDACTED" in m for m in seen)  # the deploying event's CreateModel call shows where it went
    assert not [a for a in answers if token in a]
    assert "CreateModel" in caplog.text and token not in caplog.text


def test_a_secret_that_cannot_be_read_fails_the_deployment_saying_what_to_fix(moto_url: str) -> None:
    settings = Settings(
        executor_mode="sandbox",
        sagemaker_endpoint_url=moto_url,
        hf_token_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:nowhere-AbCdEf",
    )
    calls = deploy_calls(
        CONFIG,
        Env.STAGING,
        "plan-g",
        catalog.models(),
        catalog.instances(),
        "arn:aws:iam::1:role/x",
        "us-east-1",
        hf_token=True,
    )
    backend = SageMakerBackend(settings)
    with pytest.raises(DeployFailed, match=r"HF_TOKEN_SECRET_ARN .*could not be read.*GetSecretValue"):
        backend.run(calls, "plan-g")
    assert aws(moto_url, "sagemaker").list_models()["Models"] == []  # nothing made without its token
    empty = aws(moto_url, "secretsmanager").create_secret(Name="agentops/empty", SecretString="  ")["ARN"]
    with pytest.raises(DeployFailed, match="is empty"):
        SageMakerBackend(settings.model_copy(update={"hf_token_secret_arn": empty})).run(calls, "plan-g")


def test_a_failure_message_never_carries_the_token() -> None:
    """SageMaker's validation errors can quote what they were sent: the token comes out REDACTED."""
    token = "hf_" + secrets.token_hex(12)
    sm = boto3.client("sagemaker", region_name="us-east-1")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    backend = SageMakerBackend(Settings(hf_token=token), sm, cw)
    calls = deploy_calls(
        CONFIG,
        Env.STAGING,
        "plan-t",
        catalog.models(),
        catalog.instances(),
        "arn:aws:iam::1:role/x",
        "us-east-1",
        hf_token=True,
    )
    model = calls[0]
    assert model.params["PrimaryContainer"]["Environment"]["HF_TOKEN"] == "REDACTED"
    with Stubber(sm) as stub:
        stub.add_client_error("describe_model", "ValidationException", "Could not find model")
        sent = {**model.params}
        sent["PrimaryContainer"] = {
            **model.params["PrimaryContainer"],
            "Environment": {**model.params["PrimaryContainer"]["Environment"], "HF_TOKEN": token},
        }
        stub.add_client_error(
            "create_model", "ValidationException", f"Value '{token}' at 'environment' failed", expected_params=sent
        )
        with pytest.raises(DeployFailed) as failed:
            backend.run([model])
    assert token not in str(failed.value) and "REDACTED" in str(failed.value)
    assert model.params["PrimaryContainer"]["Environment"]["HF_TOKEN"] == "REDACTED"  # the call is unchanged


def smoke_stubbed() -> tuple[SageMakerBackend, Stubber]:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    backend = SageMakerBackend(Settings(executor_mode="sandbox", sagemaker_endpoint_url="http://127.0.0.1:1"), sm, cw)
    backend._runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    return backend, Stubber(backend._runtime)


def test_the_smoke_test_sends_the_tgi_request_and_times_the_answer() -> None:
    backend, stub = smoke_stubbed()
    check = smoke_call(CONFIG, catalog.models())
    body = StreamingBody(io.BytesIO(b'[{"generated_text": "OK"}]'), 26)
    stub.add_response(
        "invoke_endpoint", {"Body": body, "ContentType": "application/json"}, expected_params=check.params
    )
    with stub:
        smoke = backend.smoke(check)
    assert smoke.outcome == "passed" and smoke.latency_ms is not None
    assert smoke.detail == "HTTP 200, 26 bytes of application/json"
    assert json.loads(check.params["Body"]) == {"inputs": SMOKE_PROMPT, "parameters": {"max_new_tokens": 8}}


@pytest.mark.parametrize(
    ("error", "body", "says"),
    [
        ("ModelError", None, "ModelError: Received server error (500) from primary"),
        ("ModelNotReadyException", None, "ModelNotReadyException"),
        (None, b"", "empty body"),
    ],
)
def test_a_smoke_test_that_gets_no_answer_says_why(error: str | None, body: bytes | None, says: str) -> None:
    backend, stub = smoke_stubbed()
    check = smoke_call(CONFIG, catalog.models())
    if error:
        stub.add_client_error("invoke_endpoint", error, "Received server error (500) from primary", 424)
    else:
        stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body or b""), 0)})
    with stub:
        smoke = backend.smoke(check)
    assert smoke.outcome == "failed" and says in smoke.detail


def test_an_lmi_model_gets_the_lmi_request_and_a_nim_an_openai_one() -> None:
    models = catalog.models()
    lmi = next(m for m in models.models if m.container.framework == "djl-lmi")
    body = json.loads(smoke_call(CONFIG.model_copy(update={"model_name": lmi.id}), models).params["Body"])
    assert body == {"inputs": SMOKE_PROMPT, "parameters": {"max_new_tokens": 8}}
    container = lmi.container.model_copy(update={"framework": "nim"})
    nim = models.model_copy(update={"models": [lmi.model_copy(update={"container": container})]})
    body = json.loads(smoke_call(CONFIG.model_copy(update={"model_name": lmi.id}), nim).params["Body"])
    assert body["messages"] == [{"role": "user", "content": SMOKE_PROMPT}] and body["model"] == lmi.id
