"""Approvals in Slack: the Approve and Reject buttons of the notifier's approval messages.

Slack posts each click to `POST /api/integrations/slack/interactions` (form-encoded `payload`).
Nothing in it is believed until the request is proven to be Slack's: `X-Slack-Signature` is the
v0 HMAC-SHA256 of `v0:{timestamp}:{raw body}` with the app's signing secret, the timestamp is
within five minutes, and the same signed request is never taken twice (a replay). The Slack user
acts as the AgentOps user an operator linked them to (`agentops slack link`), with that user's
roles, and the decision goes through exactly the API's rules (`approvals_api.decide`): the
approver role, never the requester, the plan hash the button was made for, distinct approvers.

Slack wants an answer within 3 seconds: the gateway answers as soon as the request is verified,
then decides and rewrites the message through the callback's `response_url` ("Approved by bob",
"Rejected by bob: reason", or why the click did not count). Reject asks for a reason in a dialog
(`views.open`, needing the bot token); its submission comes back as a `view_submission`. Every
refusal (bad signature, stale, replayed, unlinked, refused by the rules) is recorded in the audit
log as a `message.rejected` of the gateway, and changes nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from services.gateway.api import Gateway, GatewayDep
from services.gateway.auth import KeyStore, Role
from shared.events import MessageRejected, MessageRejectedData, PlanId
from shared.settings import Settings
from shared.text import slack_escape

log = logging.getLogger(__name__)
router = APIRouter(tags=["integrations"])
MAX_AGE_SECONDS = 300
RECORD_WAIT_TRIES = 10
REJECT_CALLBACK = "agentops_reject_reason"
SLACK_USER = r"^[UW][A-Z0-9]{2,20}$"


# ---- who is who ------------------------------------------------------------------------


class SlackLink(BaseModel):
    slack_user_id: str = Field(pattern=SLACK_USER)
    user_id: str = Field(min_length=1, max_length=200, pattern=r"^[\w.@+-]+$")


class SlackLinks:
    """The links file (`SLACK_USERS_FILE`, default AGENTOPS_HOME/slack-users.json, 0600), re-read
    when it changes so `agentops slack unlink` takes effect without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._links: dict[str, str] = {}

    def load(self) -> list[SlackLink]:
        if not self.path.exists():
            return []
        raw = json.loads(self.path.read_text() or "{}")
        return [SlackLink.model_validate(item) for item in raw.get("links", [])]

    def save(self, links: list[SlackLink]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"links": [link.model_dump() for link in links]}, handle, indent=2)
        os.replace(tmp, self.path)

    def link(self, slack_user_id: str, user_id: str) -> SlackLink:
        new = SlackLink(slack_user_id=slack_user_id, user_id=user_id)
        self.save([*(x for x in self.load() if x.slack_user_id != slack_user_id), new])
        return new

    def unlink(self, slack_user_id: str) -> bool:
        links = self.load()
        kept = [x for x in links if x.slack_user_id != slack_user_id]
        if len(kept) == len(links):
            return False
        self.save(kept)
        return True

    def user_of(self, slack_user_id: str) -> str | None:
        try:
            stat = self.path.stat()
            stamp: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            with self._lock:
                links: dict[str, str] = {}
                with contextlib.suppress(FileNotFoundError, ValueError):
                    links = {x.slack_user_id: x.user_id for x in self.load()}
                self._links, self._stamp = links, stamp
        return self._links.get(slack_user_id)


# ---- proof that it is Slack ------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def unverified(secret: str, timestamp: str | None, sent: str | None, body: bytes, now: float) -> str | None:
    """Why the request is not provably Slack's, fresh; None when it is."""
    if not timestamp or not sent:
        return "no X-Slack-Request-Timestamp or X-Slack-Signature"
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "X-Slack-Request-Timestamp is more than 5 minutes from now (stale, or a replay)"
    if not hmac.compare_digest(signature(secret, timestamp, body), sent):
        return "X-Slack-Signature does not match the body (wrong signing secret, or the body was changed)"
    return None


# ---- what was clicked ------------------------------------------------------------------


class Click(BaseModel):
    kind: Literal["approve", "reject", "reason"]
    slack_user_id: str = Field(pattern=SLACK_USER)
    plan_id: PlanId  # from the button, which a forged payload can fill with anything
    plan_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    response_url: str | None = None
    trigger_id: str | None = None
    reason: str = ""


def click_of(payload: dict[str, Any]) -> Click:
    """The click (or the reason dialog's submission) a payload carries; ValueError if none."""
    user = str((payload.get("user") or {}).get("id", ""))
    if payload.get("type") == "block_actions":
        action = (payload.get("actions") or [{}])[0]
        action_id = str(action.get("action_id", ""))
        kind: Literal["approve", "reject"]
        if action_id.startswith("approve"):
            kind = "approve"
        elif action_id.startswith("reject"):
            kind = "reject"
        else:
            raise ValueError(f"action {action_id!r} is not an approval button")
        value = json.loads(action.get("value") or "{}")
        return Click(
            kind=kind,
            slack_user_id=user,
            plan_id=str(value["plan_id"]),
            plan_hash=value.get("plan_hash"),
            response_url=payload.get("response_url"),
            trigger_id=payload.get("trigger_id"),
        )
    if payload.get("type") == "view_submission":
        view = payload.get("view") or {}
        if view.get("callback_id") != REJECT_CALLBACK:
            raise ValueError("a dialog that is not the reject reason")
        meta = json.loads(view.get("private_metadata") or "{}")
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get("reason") or {}).get("reason") or {}).get("value") or "").strip()
        return Click(
            kind="reason",
            slack_user_id=user,
            plan_id=str(meta["plan_id"]),
            plan_hash=meta.get("plan_hash"),
            response_url=meta.get("response_url"),
            reason=reason,
        )
    raise ValueError(f"interaction type {payload.get('type')!r} is not handled")


def reason_dialog(click: Click) -> dict[str, Any]:
    """The modal a Reject opens: the reason, required; the plan rides in private_metadata."""
    meta = {"plan_id": click.plan_id, "plan_hash": click.plan_hash, "response_url": click.response_url}
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": json.dumps(meta),
        "title": {"type": "plain_text", "text": "Reject the plan"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": f"Why is plan {click.plan_id[:8]} rejected?"},
                "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 1000},
            }
        ],
    }


# ---- the route -------------------------------------------------------------------------


class Slack:
    def __init__(self, settings: Settings, keys: KeyStore) -> None:
        self.settings, self.keys = settings, keys
        self.links = SlackLinks(settings.slack_users_path)
        self.http = httpx.AsyncClient(timeout=5.0)
        self.tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        await self.http.aclose()

    def later(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def say(self, click: Click, text: str) -> None:
        """Rewrite the message through the callback's response_url (Slack's hooks only)."""
        url = click.response_url or ""
        if not url.startswith(self.settings.slack_response_url_prefix):
            log.warning("slack: not answering to %r (not under SLACK_RESPONSE_URL_PREFIX)", url[:80])
            return
        body = {"replace_original": True, "text": text, "blocks": [{"type": "section", "text": _mrkdwn(text)}]}
        try:
            await self.http.post(url, json=body)
        except httpx.HTTPError as exc:
            log.warning("slack: the message could not be updated (%s)", type(exc).__name__)

    async def ask_reason(self, click: Click) -> str | None:
        """Open the reason dialog; why it could not be opened, or None."""
        token = self.settings.slack_bot_token.get_secret_value()
        if not token or not click.trigger_id:
            return "a rejection needs a reason and SLACK_BOT_TOKEN is not set to ask for it: reject in the dashboard"
        try:
            answer = await self.http.post(
                f"{self.settings.slack_api_url.rstrip('/')}/views.open",
                json={"trigger_id": click.trigger_id, "view": reason_dialog(click)},
                headers={"Authorization": f"Bearer {token}"},
            )
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"Slack could not open the reason dialog ({type(exc).__name__})"
        return None if body.get("ok") else f"Slack could not open the reason dialog ({body.get('error', 'error')})"


async def record_refusal(gw: Gateway, why: str, body: bytes, who: str = "") -> None:
    """A refused callback in the audit log, as the gateway's own `message.rejected`."""
    data = MessageRejectedData(
        service="gateway",
        subject="POST /api/integrations/slack/interactions",
        error=why[:1000],
        body_excerpt=body[:300].decode("utf-8", "replace"),
        claimed_actor=who[:200],
        body_bytes=len(body),
    )
    with contextlib.suppress(HTTPException):
        await gw.send(MessageRejected(plan_id="slack", actor="gateway", data=data))


@router.post("/api/integrations/slack/interactions", include_in_schema=False)  # Slack's, not clients'
async def interactions(request: Request, gw: GatewayDep) -> Response:
    """Slack's interaction callbacks (Approve, Reject, the reason dialog). Authenticated by Slack's
    request signature, not an API key."""
    slack: Slack = request.app.state.slack
    secret = gw.settings.slack_signing_secret.get_secret_value()
    if not secret:
        raise HTTPException(404, "Slack approvals are not configured (SLACK_SIGNING_SECRET)")
    body = await request.body()
    why = unverified(
        secret,
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
        body,
        time.time(),
    )
    if why is None and not await gw.idempotency.claim_once("slack", request.headers["x-slack-signature"]):
        why = "this signed request was already taken (a replay)"
    if why is not None:
        await record_refusal(gw, why, body)
        raise HTTPException(401, f"not a fresh request from Slack: {why}")
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        click = click_of(payload)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        await record_refusal(gw, f"not an approval interaction: {exc}", body)
        return Response(status_code=200)  # verified, but nothing of ours: Slack needs no retry
    if click.kind == "reject":  # a reason first: the dialog must open within the 3 s of the click
        if (problem := await slack.ask_reason(click)) is not None:
            slack.later(slack.say(click, f":warning: {problem}"))
        return Response(status_code=200)
    slack.later(apply_safely(gw, slack, click, body))
    return Response(status_code=200)  # the dialog closes; the message is rewritten when decided


async def apply_safely(gw: Gateway, slack: Slack, click: Click, body: bytes) -> None:
    """`apply`, and whatever goes wrong (the database or broker away) is said in the message."""
    try:
        await apply(gw, slack, click, body)
    except Exception as exc:
        log.exception("slack: deciding plan %s failed", click.plan_id)
        await slack.say(click, f":warning: Nothing was decided ({type(exc).__name__}): try again shortly")


async def apply(gw: Gateway, slack: Slack, click: Click, body: bytes) -> None:
    """Decide as the linked user, by the API's rules; rewrite the message either way."""
    from services.gateway.approvals_api import decide  # approvals_api imports this module's router

    user = slack.links.user_of(click.slack_user_id)
    who = slack.keys.principal_of(user, f"slack:{click.slack_user_id}") if user else None
    if who is None:
        why = f"Slack user {click.slack_user_id} is not linked to an AgentOps user with a key"
        await record_refusal(gw, why, body, click.slack_user_id)
        await slack.say(click, f":no_entry: Not counted: {why} (`agentops slack link {click.slack_user_id} USER`)")
        return
    decision: Literal["approved", "rejected"] = "approved" if click.kind == "approve" else "rejected"
    if decision == "rejected" and not click.reason:
        await slack.say(click, ":warning: A rejection needs a reason: nothing was decided")
        return
    for _ in range(RECORD_WAIT_TRIES):  # a click can beat the auditor to the request it answers
        if await gw.read.approval(click.plan_id) is not None:
            break
        await asyncio.sleep(0.5)
    try:
        if not who.has(Role.APPROVER):
            raise HTTPException(403, f"{who.user_id} does not hold the approver role")
        await decide(gw, who, click.plan_id, decision, click.reason, click.plan_hash)
    except HTTPException as refused:
        await record_refusal(gw, f"{who.user_id}: {refused.detail}", body, who.user_id)
        await slack.say(click, f":no_entry: Not counted ({who.user_id}): {refused.detail}")
        return
    said = f"Approved by {who.user_id}" if decision == "approved" else f"Rejected by {who.user_id}: {click.reason}"
    await slack.say(click, f"{':white_check_mark:' if decision == 'approved' else ':x:'} {said} (plan {click.plan_id})")


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": slack_escape(text)}
