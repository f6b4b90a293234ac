"""The guardrails on a table of plans: each row names every code it must produce, and no other."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shared import catalog
from shared.guardrails import Spend, check, errors
from shared.models import Env, SageMakerDeploymentConfig
from shared.settings import Settings

L8 = "meta-llama/Llama-3.1-8B-Instruct"
L70 = "meta-llama/Llama-3.1-70B-Instruct"
L1 = "meta-llama/Llama-3.2-1B-Instruct"
M7 = "mistralai/Mistral-7B-Instruct-v0.3"
MIX = "mistralai/Mixtral-8x7B-Instruct-v0.1"
G27 = "google/gemma-2-27b-it"
QWEN = "Qwen/Qwen2.5-7B-Instruct"
AWS = {"executor_mode": "aws", "execute": True, "sagemaker_execution_role_arn": "arn:aws:iam::123456789012:role/sm"}
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:agentops/hf-AbCdEf"
TOKEN = {"hf_token": "hf_test"}  # for the checks that are about something else


@dataclass
class Plan:
    name: str
    codes: set[str]
    env: str = "staging"
    model: str = L8
    instance_type: str = "ml.g5.xlarge"
    count: int = 1
    budget: float = 100.0
    endpoint: str = "chatbot-x-staging"
    model_name: str | None = None
    month_to_date: float | None = 0.0
    settings: dict[str, object] = field(default_factory=dict)

    def config(self) -> SageMakerDeploymentConfig:
        # model_construct: the guardian must catch what a buggy or hostile publisher sends unvalidated
        return SageMakerDeploymentConfig.model_construct(
            model_name=self.model_name or self.model,
            endpoint_name=self.endpoint,
            instance_type=self.instance_type,
            instance_count=self.count,
            rollback_alarms=[],
            budget_usd_per_hour=self.budget,
        )


PLANS = [
    # sound plans produce nothing
    Plan("8B on its cheapest fit in staging", set()),
    Plan("8B on g6 in dev", set(), env="dev", instance_type="ml.g6.xlarge", endpoint="chatbot-x-dev"),
    Plan("1B on the smallest GPU", set(), model=L1, instance_type="ml.g4dn.xlarge"),
    Plan("7B on g5 with a tight but sufficient budget", set(), model=M7, budget=1.5),
    Plan(
        "70B on g5.48xlarge in prod, two instances",
        set(),
        env="prod",
        model=L70,
        instance_type="ml.g5.48xlarge",
        count=2,
    ),
    Plan("27B on g5.12xlarge", set(), model=G27, instance_type="ml.g5.12xlarge"),
    Plan(
        "exactly at the staging cap",
        set(),
        instance_type="ml.g5.12xlarge",
        count=2,
        budget=14.18,
        settings={"env_hourly_caps": {"staging": 14.18}},
    ),
    # instance count
    Plan("count 5", {"INSTANCE_COUNT_OVER_LIMIT"}, count=5),
    Plan("count 0", {"INSTANCE_COUNT_OVER_LIMIT"}, count=0),
    Plan(
        "count 3 in dev where the limit is 2",
        {"INSTANCE_COUNT_OVER_LIMIT"},
        env="dev",
        count=3,
        endpoint="chatbot-x-dev",
    ),
    Plan(
        "count 4 with a prod limit set to 2",
        {"INSTANCE_COUNT_OVER_LIMIT"},
        env="prod",
        count=4,
        settings={"env_max_instance_count": {"prod": 2}},
    ),
    # instance types
    Plan(
        "unknown size of an allowed family is never priced", {"UNKNOWN_INSTANCE_TYPE"}, instance_type="ml.g5.99xlarge"
    ),
    Plan("unknown family", {"UNKNOWN_INSTANCE_TYPE", "INSTANCE_TYPE_NOT_ALLOWED"}, instance_type="ml.zz9.huge"),
    Plan("not an ml.* type at all", {"INSTANCE_TYPE_INVALID"}, instance_type="p4d.24xlarge"),
    Plan("path characters in the type", {"INSTANCE_TYPE_INVALID"}, instance_type="ml.g5/../../etc"),
    Plan("CPU instance for an 8B LLM", {"CPU_INSTANCE_FOR_LLM"}, instance_type="ml.m5.large"),
    Plan("CPU instance for a 1B LLM too", {"CPU_INSTANCE_FOR_LLM"}, model=L1, instance_type="ml.m5.xlarge"),
    Plan(
        "CPU instance in prod is also off the allow-list",
        {"CPU_INSTANCE_FOR_LLM", "INSTANCE_TYPE_NOT_ALLOWED"},
        env="prod",
        instance_type="ml.m5.large",
    ),
    Plan(
        "p5 is not allowed in dev",
        {"INSTANCE_TYPE_NOT_ALLOWED", "OVER_ENV_CAP", "OVER_MONTHLY_BUDGET"},
        env="dev",
        instance_type="ml.p5.48xlarge",
        budget=1000,
    ),
    # GPU fit
    Plan("70B on a 24 GiB GPU", {"GPU_MEMORY_TOO_SMALL"}, model=L70),
    Plan("8B on a 16 GiB T4", {"GPU_MEMORY_TOO_SMALL"}, instance_type="ml.g4dn.xlarge"),
    Plan("Mixtral on g5.12xlarge", {"GPU_MEMORY_TOO_SMALL"}, model=MIX, instance_type="ml.g5.12xlarge"),
    # model
    Plan("model not in the catalog", {"UNKNOWN_MODEL"}, model="acme/SuperLM-9000"),
    Plan("config names another model than the plan", {"UNKNOWN_MODEL"}, model_name="acme/other"),
    # endpoint name
    Plan("endpoint with an underscore", {"ENDPOINT_NAME_INVALID"}, endpoint="chatbot_x"),
    Plan("endpoint with SQL", {"ENDPOINT_NAME_INVALID"}, endpoint="x'; DROP TABLE deployments;--"),
    Plan("endpoint over 63 characters", {"ENDPOINT_NAME_INVALID"}, endpoint="a" * 64),
    Plan("endpoint ending in a hyphen", {"ENDPOINT_NAME_INVALID"}, endpoint="chatbot-"),
    Plan("endpoint with a Cyrillic a", {"ENDPOINT_NAME_INVALID"}, endpoint="chаtbot"),
    # money
    Plan("over the request's budget", {"OVER_BUDGET"}, budget=1.0),
    Plan("two instances over the budget one fits", {"OVER_BUDGET"}, count=2, budget=2.0),
    Plan("over the staging cap", {"OVER_ENV_CAP"}, instance_type="ml.g5.48xlarge", model=L70, budget=100),
    Plan(
        "over both budget and cap", {"OVER_BUDGET", "OVER_ENV_CAP"}, instance_type="ml.g5.48xlarge", model=L70, budget=5
    ),
    Plan(
        "prod p4d x 2 over the prod cap",
        {"OVER_ENV_CAP"},
        env="prod",
        model=L70,
        instance_type="ml.p4d.24xlarge",
        count=2,
        budget=500,
    ),
    Plan("a month of it is over what is left", {"OVER_MONTHLY_BUDGET"}, month_to_date=59_000.0),
    Plan(
        "monthly budget as a warning by policy",
        set(),
        month_to_date=59_500.0,
        settings={"monthly_budget_policy": "warning"},
    ),
    Plan("negative budget", {"BUDGET_INVALID"}, budget=-5),
    # a gated model's weights download only with a Hugging Face token: on AWS, none is an error
    Plan("gated model on AWS without a Hugging Face token", {"HF_TOKEN_MISSING"}, settings=AWS),
    Plan("gated model on AWS with a token secret", set(), settings={**AWS, "hf_token_secret_arn": SECRET}),
    Plan("gated model on AWS with a token", set(), settings={**AWS, "hf_token": "hf_x"}),
    Plan("open model on AWS without a token", set(), model=QWEN, settings=AWS),
    Plan("gated model in dry-run without a token (a warning)", set()),
    Plan("no spend figure skips only the monthly check", {"OVER_BUDGET"}, budget=0.5, month_to_date=None),
]


@pytest.mark.parametrize("plan", PLANS, ids=[p.name for p in PLANS])
def test_each_plan_gets_exactly_its_codes(plan: Plan) -> None:
    settings = Settings(**plan.settings)  # type: ignore[arg-type]
    spend = None if plan.month_to_date is None else Spend(plan.month_to_date)
    findings = check(plan.config(), Env(plan.env), plan.model, catalog.models(), catalog.instances(), settings, spend)
    assert {f.code for f in errors(findings)} == plan.codes, [f.message for f in findings]
    for finding in findings:
        assert len(finding.message) > 20 and finding.severity in ("error", "warning")


def test_the_table_is_large_enough_to_mean_something() -> None:
    assert len(PLANS) >= 30
    assert len({code for p in PLANS for code in p.codes}) >= 12


def test_a_warning_policy_keeps_the_finding_visible() -> None:
    plan = Plan("w", set(), month_to_date=59_500.0)
    findings = check(
        plan.config(),
        Env.STAGING,
        L8,
        catalog.models(),
        catalog.instances(),
        Settings(monthly_budget_policy="warning", **TOKEN),
        Spend(59_500.0),
    )
    assert [(f.code, f.severity) for f in findings] == [("OVER_MONTHLY_BUDGET", "warning")]
    assert "$59,500 spent" in findings[0].message


def test_messages_say_what_to_change() -> None:
    plan = Plan("m", set(), instance_type="ml.m5.large")
    (finding,) = check(plan.config(), Env.STAGING, L8, catalog.models(), catalog.instances(), Settings(**TOKEN), None)
    assert "choose a GPU instance" in finding.message and "19.3 GiB" in finding.message


@pytest.mark.parametrize("mode", ["dry-run", "sandbox"])
def test_a_gated_model_without_a_token_is_a_warning_where_nothing_is_downloaded(mode: str) -> None:
    settings = Settings(executor_mode=mode, sagemaker_endpoint_url="http://127.0.0.1:1")  # type: ignore[arg-type]
    plan = Plan("g", set())
    findings = check(plan.config(), Env.STAGING, L8, catalog.models(), catalog.instances(), settings, None)
    (finding,) = [f for f in findings if f.code == "HF_TOKEN_MISSING"]
    assert finding.severity == "warning"
    assert "HF_TOKEN_SECRET_ARN" in finding.message and "HF_TOKEN" in finding.message and L8 in finding.message
    aws = check(plan.config(), Env.STAGING, L8, catalog.models(), catalog.instances(), Settings(**AWS), None)  # type: ignore[arg-type]
    assert [(f.code, f.severity) for f in aws] == [("HF_TOKEN_MISSING", "error")]
