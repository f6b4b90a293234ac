"""Configuration: one pydantic-settings class, read from the environment (and `.env`)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.budgets import SCOPE as BUDGET_SCOPE
from shared.models import MAX_INSTANCES, UpdateStrategy


class ExecutorMode(StrEnum):
    DRY_RUN = "dry-run"
    SANDBOX = "sandbox"
    AWS = "aws"


class Settings(BaseSettings):
    """Every setting AgentOps reads. Names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Infrastructure. Empty means "embedded" to `agentops up`; services themselves require them.
    nats_url: str = ""
    database_url: str = ""
    # DATABASE_URL is this service's own login (each service its own role, see `agentops db roles`);
    # its password may come from a file instead (docker secrets), never from a log line.
    database_password_file: Path | None = None
    # `agentops migrate` as a superuser: the logins' passwords to set (compose's db-passwords.json secret)
    db_passwords_file: Path | None = None
    # This service's identity: IDENTITY_DIR/<service>.nk, its NATS nkey seed, which also signs what
    # it publishes; and the public keys every service trusts (TRUSTED_SIGNERS_FILE, default
    # IDENTITY_DIR/signers.json). `agentops up` generates both under AGENTOPS_HOME/identity.
    identity_dir: Path | None = None
    trusted_signers_file: Path | None = None
    # Readiness: the auditor may be this many events, or this many seconds, behind the stream.
    audit_lag_max_events: int = Field(default=10_000, ge=1)
    audit_lag_max_seconds: float = Field(default=30.0, gt=0)

    stream_name: str = "AGENTOPS"
    stream_replicas: int = Field(default=1, ge=1, le=5)
    dedup_window_seconds: float = Field(default=120.0, gt=0)
    # How long a delivered, unacknowledged event waits before JetStream redelivers it (a consumer
    # that crashed mid-message). Long handlers (the executor waiting on SageMaker) send heartbeats.
    ack_wait_seconds: float = Field(default=30.0, ge=1, le=3600)
    # The auditor takes up to this many events per transaction, in stream order.
    audit_batch: int = Field(default=256, ge=1, le=4096)
    # After the first events of a batch arrive, wait this long for more before writing.
    audit_linger_ms: float = Field(default=20.0, ge=0, le=1000)

    # Seed variables.
    llm_endpoint: str = ""
    retriever_embed_endpoint: str = ""
    retriever_rerank_endpoint: str = ""
    aws_region: str = "us-east-1"
    execute: bool = False

    # Planner. LLM_API_BASE (an OpenAI-compatible server: NIM, vLLM, Ollama) or LLM_ENDPOINT (a
    # SageMaker endpoint, as in the seed) turn the LLM planner on; otherwise the rules planner runs.
    # RETRIEVER_EMBED_ENDPOINT / RETRIEVER_RERANK_ENDPOINT are base URLs of NeMo Retriever NIMs.
    llm_api_base: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "nvidia/llama-3.1-nemotron-nano-8b-v1"
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    llm_max_retries: int = Field(default=2, ge=0, le=5)
    sagemaker_runtime_endpoint_url: str = ""  # a non-AWS endpoint for tests and local stand-ins
    retriever_embed_model: str = "nvidia/nv-embedqa-e5-v5"
    retriever_rerank_model: str = "nvidia/nv-rerankqa-mistral-4b-v3"
    retriever_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    retrieval_top_k: int = Field(default=3, ge=1, le=10)

    executor_mode: ExecutorMode = ExecutorMode.DRY_RUN
    dry_run_deploy_seconds: float = Field(default=0.0, ge=0, le=20)
    # sandbox: the moto server `agentops up --sandbox` starts; also any SageMaker-compatible endpoint.
    sagemaker_endpoint_url: str = ""
    alarm_5xx_threshold: float = Field(default=5.0, ge=0)  # 5XX errors per minute, two minutes running
    alarm_latency_ms: float = Field(default=2000.0, gt=0)  # average model latency, two minutes running
    poll_initial_seconds: float = Field(default=5.0, gt=0)
    poll_max_seconds: float = Field(default=60.0, gt=0)
    deploy_timeout_seconds: float = Field(default=3600.0, gt=0)
    reconcile_seconds: float = Field(default=300.0, gt=0)
    cost_cache_seconds: float = Field(default=300.0, ge=0)
    sagemaker_execution_role_arn: str = "arn:aws:iam::000000000000:role/AgentOpsSageMakerExecution"
    # Gated Hugging Face models (Llama, Mistral, Gemma) download their weights with a token: the
    # ARN of a Secrets Manager secret the executor reads at each deploy (the token itself, or JSON
    # with an HF_TOKEN key), or the token itself. Only the executor ever holds it; events, plans,
    # the audit log and logs show it as REDACTED.
    hf_token_secret_arn: str = ""
    hf_token: SecretStr = SecretStr("")
    # Models outside the catalog (`org/name`) are sized from the Hugging Face Hub's metadata:
    # HF_ENDPOINT points at a mirror (or a test server); empty is huggingface.co.
    hf_endpoint: str = ""
    hub_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # Gateway.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8000, ge=0, le=65535)
    # Prometheus text of a service other than the gateway (whose is at /metrics); 0: none
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # info: a service says what it starts, warns and fails; debug: every framework's chatter too
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # text for a terminal; json: one object per line (service, level, message, plan_id, trace_id...)
    log_format: Literal["text", "json"] = "text"
    command_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    max_command_chars: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # events a live-event stream may fall behind before it is ended (its client resumes)
    sse_client_buffer: int = Field(default=2000, ge=10, le=100_000)
    cors_origins: list[str] = ["http://localhost:5173", "http://127.0.0.1:5173"]
    # The dashboard build the gateway serves at / (default: frontend/dist beside the services).
    dashboard_dir: Path | None = None
    # Per API key on POST /api/agent/command: a token bucket refilled at this rate, holding `burst`.
    command_rate_per_minute: float = Field(default=120.0, gt=0)
    command_burst: int = Field(default=30, ge=1)
    idempotency_ttl_seconds: float = Field(default=24 * 3600.0, gt=0)
    # API keys: the file `agentops keys` manages (default AGENTOPS_HOME/api-keys.json) and/or
    # API_KEYS, a JSON list of {"user_id", "roles", "key_sha256"} (hashes only, never secrets).
    api_keys_file: Path | None = None
    api_keys: str = ""

    # Guardian.
    max_instance_count: int = Field(default=MAX_INSTANCES, ge=1, le=MAX_INSTANCES)
    env_hourly_caps: dict[str, float] = {"dev": 10.0, "staging": 15.0, "prod": 50.0}
    default_instance_count: dict[str, int] = {"dev": 1, "staging": 1, "prod": 2}
    approval_ttl_hours: float = Field(default=24.0, gt=0)
    # Per-env limits below the schema's 1-4 and instance families each env may use (fnmatch patterns).
    env_max_instance_count: dict[str, int] = {"dev": 2, "staging": MAX_INSTANCES, "prod": MAX_INSTANCES}
    env_instance_allowlist: dict[str, list[str]] = {
        "dev": ["ml.m5.*", "ml.g4dn.*", "ml.g5.*", "ml.g6.*", "ml.g6e.*", "ml.inf2.*"],
        "staging": ["ml.m5.*", "ml.g4dn.*", "ml.g5.*", "ml.g6.*", "ml.g6e.*", "ml.p4d.*", "ml.inf2.*"],
        "prod": ["ml.g5.*", "ml.g6.*", "ml.g6e.*", "ml.p4d.*", "ml.p4de.*", "ml.p5.*", "ml.inf2.*"],
    }
    # Plans over this hourly cost need an approval in any env; over the second, two distinct approvers.
    approval_cost_threshold_usd_per_hour: float = Field(default=20.0, gt=0)
    two_approvers_over_usd_per_hour: float = Field(default=40.0, gt=0)
    # Monthly budget: projected month (hourly x 730) over what is left of it is an error or a warning.
    monthly_budget_usd: float = Field(default=60_000.0, gt=0)
    monthly_budget_policy: Literal["error", "warning"] = "error"
    # How fresh the month-to-date spend behind the monthly budget check is: it scans the log's cost
    # events, so every few seconds under load was the guardian's largest cost; a minute of staleness
    # is nothing against a monthly budget.
    spend_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    approval_sweep_seconds: float = Field(default=30.0, gt=0)
    # Monthly budgets per scope to start with (`env:prod`, `app:chatbot-x`), in USD, with the
    # default thresholds (50 % notify, 80 % forecast notify, 100 % block); PUT /api/budgets/{scope}
    # (or `agentops budgets set`) sets or changes one, audited. Checked every BUDGET_CHECK_SECONDS.
    budgets: dict[str, float] = {}
    budget_check_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Idle pause per env: a plan in the env is paused after this many minutes without invocations
    # (CloudWatch, read by the executor) unless its command says otherwise ("... and pause when idle
    # for 2 hours"); PUT /api/deployments/{id}/schedule changes one deployment's. Unset: never.
    idle_pause_minutes: dict[str, int] = {}
    # how often the executor checks schedules and idleness
    schedule_check_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How an update (or rollback) of a live endpoint moves traffic, per env, unless the command
    # names a strategy ("with a 10% canary"): UPDATE_STRATEGY='{"prod": {"shift": "linear", ...}}'.
    update_strategy: dict[str, UpdateStrategy] = {
        "dev": UpdateStrategy(shift="all_at_once", wait_seconds=0),
        "staging": UpdateStrategy(shift="all_at_once", wait_seconds=120),
        "prod": UpdateStrategy(shift="canary", percent=10, wait_seconds=600),
    }

    # Slack approvals: interaction callbacks at POST /api/integrations/slack/interactions are
    # verified with the app's signing secret; Slack users act as the AgentOps users they are linked
    # to (`agentops slack link`). The bot token opens the reason dialog of a Reject.
    slack_signing_secret: SecretStr = SecretStr("")
    slack_bot_token: SecretStr = SecretStr("")
    slack_api_url: str = "https://slack.com/api"
    # where the gateway may post message updates (a callback's response_url): Slack's own hooks
    slack_response_url_prefix: str = "https://hooks.slack.com/"
    slack_users_file: Path | None = None

    # Notifier: targets from WEBHOOKS (JSON list of {name, url, secret, events?}) and/or a file.
    webhooks: str = ""
    webhooks_file: Path | None = None
    notifier_max_attempts: int = Field(default=5, ge=1, le=20)
    notifier_backoff_seconds: float = Field(default=1.0, ge=0, le=60)
    notifier_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Runtime.
    agentops_home: Path = Path(".agentops")
    # Audit anchors: where the chain's head is written outside the table, and how often.
    audit_anchor_file: Path | None = None
    audit_anchor_seconds: float = Field(default=300.0, gt=0)

    @property
    def planner_backend(self) -> str:
        return "openai" if self.llm_api_base else "sagemaker" if self.llm_endpoint else "rules"

    @property
    def hf_token_configured(self) -> bool:
        """Whether gated models get a token (the guardian needs only this, never the token)."""
        return bool(self.hf_token_secret_arn.strip() or self.hf_token.get_secret_value().strip())

    @property
    def identity_path(self) -> Path:
        return self.identity_dir or self.agentops_home / "identity"

    @property
    def signers_path(self) -> Path:
        return self.trusted_signers_file or self.identity_path / "signers.json"

    def seed_path(self, identity: str) -> Path:
        return self.identity_path / f"{identity}.nk"

    @property
    def service_database_url(self) -> str:
        """DATABASE_URL, with the password from DATABASE_PASSWORD_FILE when one is given."""
        if not self.database_password_file:
            return self.database_url
        from shared.db import with_login

        return with_login(self.database_url, password=self.database_password_file.read_text().strip())

    @property
    def webhooks_path(self) -> Path:
        return self.webhooks_file or self.agentops_home / "webhooks.json"

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor_file or self.agentops_home / "audit-anchors.jsonl"

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys_file or self.agentops_home / "api-keys.json"

    @property
    def slack_users_path(self) -> Path:
        return self.slack_users_file or self.agentops_home / "slack-users.json"

    @field_validator("budgets")
    @classmethod
    def _budget_scopes(cls, value: dict[str, float]) -> dict[str, float]:
        for scope, usd in value.items():
            if not re.fullmatch(BUDGET_SCOPE, scope):
                raise ValueError(f"BUDGETS: {scope!r} is not a scope: use env:<dev|staging|prod> or app:<app>")
            if not usd > 0:
                raise ValueError(f"BUDGETS: the budget of {scope} must be a positive number of USD a month")
        return value

    @field_validator("idle_pause_minutes")
    @classmethod
    def _idle_envs(cls, value: dict[str, int]) -> dict[str, int]:
        from shared.schedules import check_idle_minutes

        for env, minutes in value.items():
            if env not in ("dev", "staging", "prod"):
                raise ValueError(f"IDLE_PAUSE_MINUTES: {env!r} is not an env: use dev, staging or prod")
            try:
                check_idle_minutes(minutes)
            except ValueError as exc:
                raise ValueError(f"IDLE_PAUSE_MINUTES[{env}]: {exc}") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_cors(cls, origins: list[str]) -> list[str]:
        if "*" in origins:
            raise ValueError("CORS_ORIGINS may not contain '*': list the dashboard origins explicitly")
        return origins

    @model_validator(mode="after")
    def _aws_needs_execute(self) -> Settings:
        if self.executor_mode is ExecutorMode.AWS and not self.execute:
            raise ValueError("EXECUTOR_MODE=aws makes real AWS calls and requires EXECUTE=true")
        if self.executor_mode is ExecutorMode.AWS and ":000000000000:" in self.sagemaker_execution_role_arn:
            raise ValueError("EXECUTOR_MODE=aws needs SAGEMAKER_EXECUTION_ROLE_ARN set to a real IAM role")
        if self.executor_mode is ExecutorMode.SANDBOX and not self.sagemaker_endpoint_url:
            raise ValueError("EXECUTOR_MODE=sandbox needs SAGEMAKER_ENDPOINT_URL (`agentops up --sandbox` sets it)")
        return self

    def require_infrastructure(self, service: str = "gateway") -> None:
        """Services cannot run embedded on their own: `agentops up` provides the URLs. Only the
        auditor, the gateway and the guardian use the database."""
        needed = ("nats_url", "database_url") if service in ("auditor", "gateway", "guardian") else ("nats_url",)
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise SystemExit(
                f"{', '.join(m.upper() for m in missing)} not set: start the system with `agentops up`, "
                "or set them to reachable servers"
            )
