"""Webhooks: which events go where, in a Slack-compatible body, signed, retried, then given up on.

Signature (like Stripe's and Slack's): header `X-AgentOps-Signature: t=<unix seconds>,v1=<hex>`
where hex = HMAC-SHA256(secret, "<t>.<raw body>"). Receivers recompute it and reject old `t`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, HttpUrl, SecretStr

from shared.events import ApprovalRequested, Event
from shared.text import slack_escape

DEFAULT_EVENTS = [
    "approval.requested",
    "plan.rejected",
    "deployment.status:failed",
    "deployment.status:deployed",
    "budget.threshold_crossed",
]


class Target(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    url: HttpUrl
    secret: SecretStr
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    # "slack": a Slack incoming webhook; approval requests go as Block Kit with Approve and Reject
    # buttons (the gateway takes the clicks: services/gateway/slack.py)
    kind: Literal["webhook", "slack"] = "webhook"

    def wants(self, event: Event) -> bool:
        status = getattr(event.data, "status", None)
        return any(rule in (event.type, f"{event.type}:{status}") for rule in self.events)

    def types(self) -> set[str]:
        """The event types some events of which go to this target (some statuses, or all)."""
        return {rule.split(":", 1)[0] for rule in self.events}


def load_targets(raw: str, file: Path | None) -> list[Target]:
    items = json.loads(raw) if raw.strip() else []
    if file is not None and file.exists():
        items += json.loads(file.read_text() or "[]")
    return [Target.model_validate(item) for item in items]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: float = 300.0) -> bool:
    """What a receiver does (and what the tests do)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or abs(time.time() - int(parts["t"])) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(parts["t"]), body), header)


def text_of(event: Event) -> str:
    d = event.model_dump(mode="json")["data"]
    plan = event.plan_id
    if event.type == "approval.requested":
        return (
            f":raised_hand: {d['requested_by']} asks to deploy {d['config']['model_name']} as "
            f"{d['config']['endpoint_name']} to {d['env']} (${d['estimated_usd_per_hour']:.2f}/h, "
            f"{d['config']['instance_count']} x {d['config']['instance_type']}); "
            f"approve by {d['expires_at']}. Plan {plan}"
        )
    if event.type == "plan.rejected":
        reasons = "; ".join(f"{e['code']}: {e['message']}" for e in d["errors"])
        return f":no_entry: plan {plan} was refused by the guardrails: {reasons}"
    if event.type == "deployment.status":
        icon = {"deployed": ":white_check_mark:", "failed": ":x:"}.get(d["status"], ":information_source:")
        reason = f": {d['reason']}" if d.get("reason") else ""
        return f"{icon} {d['endpoint_name']} is {d['status']} ({d['mode']}){reason}. Plan {plan}"
    if event.type == "budget.threshold_crossed":
        t = d["threshold"]
        basis = f"${d['spend_usd']:,.2f} spent" if t["basis"] == "actual" else f"${d['forecast_usd']:,.2f} forecast"
        done = {"notify": "", "block": "; new spending is blocked", "pause": f"; paused {len(d['paused'])} endpoints"}
        return (
            f":money_with_wings: budget {d['scope']} is past {t['percent']:g}% of ${d['monthly_usd']:,.2f} for "
            f"{d['period']} ({basis}){done[t['action']]}"
        )
    return f"{event.type} for plan {plan} by {event.actor}"


def body_of(event: Event, kind: str = "webhook") -> bytes:
    if kind == "slack":
        return json.dumps(slack_message(event), ensure_ascii=False).encode()
    return json.dumps({"text": text_of(event), "event": event.model_dump(mode="json")}, ensure_ascii=False).encode()


def slack_message(event: Event) -> dict[str, Any]:
    """Slack's incoming-webhook body. An approval request is Block Kit: what is asked (plan,
    env, model, instances, cost, who asks, until when), the guardrails' warnings, and Approve and
    Reject buttons whose value names the request and the plan hash the approver sees."""
    text = slack_escape(text_of(event))
    if not isinstance(event, ApprovalRequested):
        return {"text": text}
    d = event.data
    config = d.config
    what = f"{d.operation} of " if d.operation != "deploy" else ""
    fields = [
        f"*Plan*\n`{event.plan_id}`",
        f"*Environment*\n{d.env.value}",
        f"*Model*\n{slack_escape(config.model_name)}",
        f"*Instances*\n{config.instance_count} x {config.instance_type}",
        f"*Cost*\n${d.estimated_usd_per_hour:.2f}/h"
        + (f" (now ${d.previous_usd_per_hour:.2f}/h)" if d.previous_usd_per_hour is not None else ""),
        f"*Approvers needed*\n{d.approvals_required}",
        f"*Requested by*\n{slack_escape(d.requested_by)}",
        f"*Expires*\n{d.expires_at:%Y-%m-%d %H:%M} UTC",
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Approval needed: {what}{config.endpoint_name}"[:150]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(d.intent)[:2900]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if d.warnings:
        findings = "\n".join(f"• `{f.code}` {slack_escape(f.message)}" for f in d.warnings)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Findings*\n{findings}"[:2900]}})
    value = json.dumps({"plan_id": event.plan_id, "plan_hash": d.plan_hash})
    blocks.append(
        {
            "type": "actions",
            "block_id": f"agentops_approval_{event.plan_id}"[:255],
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve_plan",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": "reject_plan",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "style": "danger",
                    "value": value,
                },
            ],
        }
    )
    return {"text": text, "blocks": blocks}


async def deliver(
    client: httpx.AsyncClient,
    target: Target,
    event: Event,
    attempts: int,
    backoff: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[int, str | None]:
    """(attempts made, None) on success, or (attempts made, the last error)."""
    body = body_of(event, target.kind)
    error = "not attempted"
    for attempt in range(1, attempts + 1):
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "x-agentops-event": event.type,
            "x-agentops-event-id": str(event.id),
            "x-agentops-signature": sign(target.secret.get_secret_value(), ts, body),
        }
        try:
            response = await client.post(str(target.url), content=body, headers=headers)
            if response.status_code < 300:
                return attempt, None
            error = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                return attempt, error  # the receiver refuses this body: retrying will not help
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        if attempt < attempts:
            await sleep(backoff * 2 ** (attempt - 1))
    return attempts, error
