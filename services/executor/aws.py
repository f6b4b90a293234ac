"""The one boto3 path for `sandbox` (a moto server) and `aws` (real SageMaker).

Every create is preceded by a Describe, so a redelivered request, or one that follows a crash
between two calls, finds what exists and carries on instead of creating it twice. Deletes of
what is already gone succeed. Throttling and transient errors are retried by botocore (standard
mode, with backoff); what cannot succeed by retrying fails the deployment with a clear reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.executor.sagemaker import HF_TOKEN_VAR, REDACTED, VARIANT
from shared.models import SageMakerCall, SmokeTest
from shared.schedules import METRIC_PERIOD_SECONDS
from shared.settings import ExecutorMode, Settings

# What moto's SageMaker accepts as instance types predates g5/g6/g6e/p4d/p5/inf2 (its enum is old).
# In sandbox mode only, a botocore hook swaps such a type for a stand-in moto knows; the calls we
# record and the code path are the real ones.
SANDBOX_STAND_IN = "ml.g4dn.xlarge"
MOTO_KNOWS = ("ml.m4.", "ml.m5.", "ml.m5d.", "ml.c4.", "ml.c5.", "ml.c5d.", "ml.p2.", "ml.p3.", "ml.g4dn.", "ml.t2.")
FATAL = {
    "ResourceLimitExceeded": "the account's SageMaker quota for this instance type is used up: "
    "request a quota increase or choose another type",
    "AccessDeniedException": "the executor's AWS role may not do this: grant it the SageMaker and CloudWatch "
    "permissions listed in the README",
    "ValidationException": "SageMaker refused the request",
}
MISSING = ("Could not find", "does not exist", "not found")
# Retried here as well as by botocore, so a throttled call is never mistaken for a refused one.
TRANSIENT = {"ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure", "RequestLimitExceeded"}
TRANSIENT_TRIES = 6
OWNER_TAG = "agentops:plan_id"  # on the model, config and endpoint: the plan they belong to
MISSING_ENDPOINT = "\0missing"
WITHHELD = "a log line that would show a Secrets Manager secret, withheld"
TOKENS: set[str] = set()  # the Hugging Face tokens this process has read: never shown anywhere


class DeployFailed(Exception):
    """The deployment cannot succeed by retrying; the message is the reason users see."""


@dataclass(frozen=True)
class Outcome:
    status: str  # InService | Failed | UpdateRollbackFailed | missing
    reason: str | None = None
    config: str | None = None  # the endpoint config it serves (after an update: which one won)


def client(settings: Settings, service: str) -> Any:
    config = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.sagemaker_endpoint_url:
        kwargs["endpoint_url"] = settings.sagemaker_endpoint_url
    return boto3.client(service, **kwargs)  # type: ignore[call-overload]


def clients(settings: Settings) -> tuple[Any, Any]:
    sm, cw = client(settings, "sagemaker"), client(settings, "cloudwatch")
    if settings.executor_mode is ExecutorMode.SANDBOX:
        sm.meta.events.register("provide-client-params.sagemaker.CreateEndpointConfig", _stand_in)
    return sm, cw


def _stand_in(params: dict[str, Any], **_: Any) -> None:
    for variant in params.get("ProductionVariants", []):
        if not variant.get("InstanceType", "").startswith(MOTO_KNOWS):
            variant["InstanceType"] = SANDBOX_STAND_IN


def _missing(exc: ClientError) -> bool:
    message = exc.response.get("Error", {}).get("Message", "")
    return any(m in message for m in MISSING) or exc.response.get("Error", {}).get("Code") == "ResourceNotFound"


def _fatal(exc: Exception, call: SageMakerCall) -> DeployFailed:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        why = FATAL.get(code, f"{code or 'error'}")
        return DeployFailed(f"{call.operation} failed: {why} ({message})"[:900])
    return DeployFailed(f"{call.operation} failed: {type(exc).__name__}: {exc}"[:900])


class SageMakerBackend:
    def __init__(self, settings: Settings, sm: Any = None, cw: Any = None, secrets: Any = None) -> None:
        self.settings = settings
        if sm is None or cw is None:
            sm, cw = clients(settings)
        self.sm, self.cw = sm, cw
        self._secrets = secrets  # Secrets Manager, made when a gated model first needs its token
        self._runtime: Any = None  # SageMaker Runtime, made for the first smoke test
        self._tokens = TOKENS  # every token held, so no message that leaves here shows one
        self.sleep: Callable[[float], None] = time.sleep
        # botocore logs each request's body at debug level: a line that would hold the token
        # holds REDACTED instead, whatever logger wrote it (one filter per handler, however many
        # backends the process makes)
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, Redacting) for f in handler.filters):
                handler.addFilter(Redacting(TOKENS))

    # ---- the Hugging Face token -------------------------------------------------------

    def hf_token(self) -> str:
        """The token, read at each deploy (a rotated secret is taken up without a restart)."""
        if token := self.settings.hf_token.get_secret_value().strip():
            self._tokens.add(token)
            return token
        arn = self.settings.hf_token_secret_arn.strip()
        if not arn:
            raise DeployFailed(
                "HuggingFaceToken: the model is gated and no token is configured: set HF_TOKEN_SECRET_ARN or HF_TOKEN"
            )
        if self._secrets is None:
            self._secrets = client(self.settings, "secretsmanager")
        try:
            text = self._secrets.get_secret_value(SecretId=arn).get("SecretString") or ""
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise DeployFailed(
                f"HuggingFaceToken: the secret HF_TOKEN_SECRET_ARN names could not be read ({code}): check that "
                "it exists in this region and that the executor's role may secretsmanager:GetSecretValue on it"
            ) from None
        except BotoCoreError as exc:
            why = type(exc).__name__
            raise DeployFailed(f"HuggingFaceToken: Secrets Manager could not be reached ({why})") from None
        token = _token_in(text)
        if not token:
            raise DeployFailed(
                "HuggingFaceToken: the secret HF_TOKEN_SECRET_ARN names is empty: store the token itself, or JSON "
                'with an "HF_TOKEN" key'
            )
        self._tokens.add(token)
        return token

    def _sent(self, call: SageMakerCall) -> dict[str, Any]:
        """The parameters as sent: a REDACTED token replaced by the real one, in a copy (the call
        itself, which events carry, keeps REDACTED)."""
        env = call.params.get("PrimaryContainer", {}).get("Environment", {})
        if call.operation != "CreateModel" or env.get(HF_TOKEN_VAR) != REDACTED:
            return call.params
        container = {**call.params["PrimaryContainer"], "Environment": {**env, HF_TOKEN_VAR: self.hf_token()}}
        return {**call.params, "PrimaryContainer": container}

    def _scrubbed(self, failure: DeployFailed) -> DeployFailed:
        message = redact(str(failure), self._tokens)
        return failure if message == str(failure) else DeployFailed(message)

    # ---- calls ------------------------------------------------------------------------

    def run(self, calls: list[SageMakerCall], owner: str | None = None) -> None:
        """Make the calls for plan `owner`. An endpoint carries its plan's id as a tag: another
        plan's endpoint is never taken over (a create that finds it, a resize), nor removed with
        its alarms by this plan's pause or delete."""
        if owner is not None:
            calls = self._leave_others(calls, owner)
        for call in calls:
            for attempt in range(TRANSIENT_TRIES):
                try:
                    self._one(call, owner)
                    break
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code in TRANSIENT and attempt < TRANSIENT_TRIES - 1:
                        self.sleep(min(0.5 * 2**attempt, self.settings.poll_max_seconds))
                        continue
                    raise self._scrubbed(_fatal(exc, call)) from None
                except BotoCoreError as exc:
                    raise self._scrubbed(_fatal(exc, call)) from None

    def _one(self, call: SageMakerCall, owner: str | None = None) -> None:
        p = call.params
        if call.service == "cloudwatch":
            getattr(self.cw, _snake(call.operation))(**p)  # PutMetricAlarm overwrites; DeleteAlarms ignores unknown
            return
        exists = {
            "CreateModel": lambda: self.sm.describe_model(ModelName=p["ModelName"]),
            "CreateEndpointConfig": lambda: self.sm.describe_endpoint_config(
                EndpointConfigName=p["EndpointConfigName"]
            ),
            "CreateEndpoint": lambda: self.sm.describe_endpoint(EndpointName=p["EndpointName"]),
        }.get(call.operation)
        if exists is not None and self._found(exists):
            if call.operation == "CreateEndpoint":
                self._must_own(p["EndpointName"], _plan_of(p.get("Tags", [])))
            return  # made by an earlier delivery of this request
        if call.operation in ("UpdateEndpointWeightsAndCapacities", "UpdateEndpoint"):
            self._must_own(p["EndpointName"], owner)
        if call.operation == "UpdateEndpoint" and self._updating_to(p["EndpointName"], p["EndpointConfigName"]):
            return  # an earlier delivery of this request started it: wait for it, do not start it twice
        try:
            getattr(self.sm, _snake(call.operation))(**self._sent(call))
        except ClientError as exc:
            if call.operation.startswith("Delete") and _missing(exc):
                return  # already gone: the goal is reached
            raise

    def _leave_others(self, calls: list[SageMakerCall], owner: str) -> list[SageMakerCall]:
        spared = {
            c.params["EndpointName"]
            for c in calls
            if c.operation == "DeleteEndpoint"
            and self.owner_of(c.params["EndpointName"]) not in (owner, MISSING_ENDPOINT)
        }
        if not spared:
            return calls
        # another plan's (or nobody's) endpoint stays, and so do its alarms (`<endpoint>-5xx`, ...)
        return [
            c
            for c in calls
            if not (c.operation == "DeleteEndpoint" and c.params["EndpointName"] in spared)
            and not (
                c.operation == "DeleteAlarms" and any(a.rsplit("-", 1)[0] in spared for a in c.params["AlarmNames"])
            )
        ]

    def owner_of(self, endpoint: str) -> str | None:
        """The plan id an endpoint is tagged with (None: untagged, not made by AgentOps;
        MISSING_ENDPOINT: there is no such endpoint)."""
        try:
            arn = self.sm.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
        except ClientError as exc:
            if _missing(exc):
                return MISSING_ENDPOINT
            raise
        return _plan_of(self.sm.list_tags(ResourceArn=arn).get("Tags", []))

    def tagged_endpoints(self) -> dict[str, str | None]:
        """Every endpoint in the region that carries AgentOps tags, with the plan its tag names."""
        found: dict[str, str | None] = {}
        for page in self.sm.get_paginator("list_endpoints").paginate():
            for endpoint in page["Endpoints"]:
                tags = self.sm.list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
                if any(t.get("Key", "").startswith("agentops:") for t in tags):
                    found[endpoint["EndpointName"]] = _plan_of(tags)
        return found

    def _must_own(self, endpoint: str, plan_id: str | None) -> None:
        if plan_id is None:
            return
        owner = self.owner_of(endpoint)
        if owner in (plan_id, MISSING_ENDPOINT):
            return
        if owner is None:
            raise DeployFailed(
                f"EndpointNotOurs: {endpoint} exists in SageMaker but no AgentOps plan made it (it has no "
                f"{OWNER_TAG} tag): delete it in SageMaker, or deploy under another app name"
            )
        raise DeployFailed(
            f"EndpointOwned: {endpoint} belongs to plan {owner}: change or delete that plan; AgentOps never "
            "takes over another plan's endpoint"
        )

    def _updating_to(self, endpoint: str, config: str) -> bool:
        answer = self.sm.describe_endpoint(EndpointName=endpoint)
        if answer.get("EndpointConfigName") == config:
            return True
        pending = answer.get("PendingDeploymentSummary") or {}
        return bool(pending.get("EndpointConfigName") == config and answer.get("EndpointStatus") == "Updating")

    @staticmethod
    def _found(describe: Callable[[], Any]) -> bool:
        try:
            describe()
            return True
        except ClientError as exc:
            if _missing(exc):
                return False
            raise

    def smoke(self, call: SageMakerCall) -> SmokeTest:
        """Send the smoke test request once; `passed` needs HTTP 200 with a body."""
        if self._runtime is None:
            self._runtime = client(self.settings, "sagemaker-runtime")
        started = time.perf_counter()
        try:
            answer = self._runtime.invoke_endpoint(**call.params)
            body = answer["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            detail = f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip().rstrip(":")
            detail = redact(detail, self._tokens)[:500]
            return SmokeTest(outcome="failed", latency_ms=_since(started), detail=detail)
        except BotoCoreError as exc:
            return SmokeTest(outcome="failed", latency_ms=_since(started), detail=type(exc).__name__)
        latency = _since(started)
        if not body:
            return SmokeTest(outcome="failed", latency_ms=latency, detail="the endpoint answered with an empty body")
        kind = answer.get("ContentType") or "no content type"
        return SmokeTest(outcome="passed", latency_ms=latency, detail=f"HTTP 200, {len(body)} bytes of {kind}"[:500])

    # ---- state ------------------------------------------------------------------------

    def endpoint(self, name: str) -> Outcome:
        try:
            answer = self.sm.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if _missing(exc):
                return Outcome("missing")
            raise
        return Outcome(answer["EndpointStatus"], answer.get("FailureReason"), answer.get("EndpointConfigName"))

    def invocations(self, name: str, since: datetime, until: datetime) -> float:
        """Requests the endpoint served in [since, until], from CloudWatch's per-minute
        `AWS/SageMaker` `Invocations` (SageMaker sends no datapoint for a minute without any)."""
        answer = self.cw.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": VARIANT}],
            StartTime=since,
            EndTime=until,
            Period=METRIC_PERIOD_SECONDS,
            Statistics=["Sum"],
        )
        return float(sum(point.get("Sum", 0.0) for point in answer.get("Datapoints", [])))

    def wait_in_service(self, name: str, heartbeat: Callable[[], None] = lambda: None) -> Outcome:
        """Poll with backoff until InService or Failed, within DEPLOY_TIMEOUT_SECONDS."""
        deadline = time.monotonic() + self.settings.deploy_timeout_seconds
        delay = self.settings.poll_initial_seconds
        while True:
            state = self.endpoint(name)
            if state.status in ("InService", "Failed", "UpdateRollbackFailed", "missing"):
                return state
            if time.monotonic() > deadline:
                limit = self.settings.deploy_timeout_seconds
                return Outcome("Failed", f"{name} was still {state.status} after {limit:.0f} s")
            heartbeat()
            self.sleep(delay)
            delay = min(delay * 2, self.settings.poll_max_seconds)


class Redacting(logging.Filter):
    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "SecretString" in message:  # botocore's Secrets Manager response, before the token is known
            record.msg, record.args = f"{WITHHELD} ({record.name})", None
        elif self.secrets and any(secret in message for secret in self.secrets):
            record.msg, record.args = redact(message, self.secrets), None
        return True


def redact(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _token_in(secret: str) -> str:
    """A secret holds the token itself, or JSON with it under HF_TOKEN (or another *token* key)."""
    text = secret.strip()
    if not text.startswith("{"):
        return text
    try:
        fields = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(fields, dict):
        return ""
    for key in (HF_TOKEN_VAR, "HUGGING_FACE_HUB_TOKEN", "hf_token", "token"):
        if isinstance(fields.get(key), str) and fields[key].strip():
            return str(fields[key]).strip()
    return ""


def _plan_of(tags: list[dict[str, str]]) -> str | None:
    return next((t["Value"] for t in tags if t.get("Key") == OWNER_TAG), None)


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
