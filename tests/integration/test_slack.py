"""Approvals in Slack through the whole system: the notifier's Block Kit message, then Slack's
interaction callbacks, signed as Slack signs them, against a local server standing in for Slack
(its incoming webhook, `views.open` and the callbacks' `response_url`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

from services.gateway.slack import SlackLinks, signature
from tests.fakes import FakeHttp, Seen, serve
from tests.infra import for_service, found, service_app
from tests.integration.conftest import System, running, system_settings
from tests.keys import api_keys_env

pytestmark = pytest.mark.integration
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
LINKS = {"UBOB0001": "bob", "UCAROL01": "carol", "UALICE01": "alice", "UVIC0001": "vic", "UDAVE001": "dave"}


@pytest.fixture
def slack() -> Iterator[FakeHttp]:
    fake = FakeHttp(
        routes={
            "POST /hooks/.*": lambda body: (200, "ok"),
            "POST /response/.*": lambda body: (200, {"ok": True}),
            "POST /api/views.open": lambda body: (200, {"ok": True, "view": {"id": "V1"}}),
        }
    )
    with serve(fake):
        yield fake


@pytest.fixture
async def system(
    nats_url: str, database_url: str, slack: FakeHttp, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[System]:
    links = SlackLinks(tmp_path / "slack-users.json")
    for slack_user, user in LINKS.items():
        links.link(slack_user, user)
    hook = {"name": "slack", "url": f"{slack.url}/hooks/T1/B1", "secret": "unused", "kind": "slack"}
    settings = system_settings(
        nats_url,
        database_url,
        slack_signing_secret=SECRET,
        slack_bot_token="xoxb-test-token",
        slack_api_url=f"{slack.url}/api",
        slack_response_url_prefix=f"{slack.url}/response/",
        slack_users_file=tmp_path / "slack-users.json",
        webhooks=json.dumps([{**hook, "events": ["approval.requested"]}]),
        **getattr(request, "param", {}),
    )
    # every service, and the notifier (which `running` leaves out) with the settings' targets
    async with running(settings) as client, service_app("notifier", for_service(settings, "notifier")):
        yield System(client, settings)


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    return await found(check, timeout)


async def approval_message(slack: FakeHttp, plan_id: str) -> dict[str, Any]:
    def posted() -> dict[str, Any] | None:
        for seen in slack.requests:
            if seen.path.startswith("/hooks/") and plan_id in json.dumps(seen.body):
                return seen.body  # type: ignore[no-any-return]
        return None

    return await eventually(posted)  # type: ignore[no-any-return]


def button(message: dict[str, Any], action: str) -> dict[str, Any]:
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    return next(e for e in actions["elements"] if e["action_id"].startswith(action))


def click(slack: FakeHttp, who: str, value: str, action: str = "approve_plan", n: int = 1) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": who, "username": who.lower()},
        "trigger_id": f"1234.{n}",
        "response_url": f"{slack.url}/response/{n}",
        "actions": [{"type": "button", "action_id": action, "value": value, "action_ts": "1"}],
    }


async def send(
    system: System, payload: dict[str, Any], *, secret: str = SECRET, at: float | None = None, raw: bytes | None = None
) -> Any:
    body = raw or urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(at if at is not None else time.time()))
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": signature(secret, ts, body),
    }
    return await system.client.post("/api/integrations/slack/interactions", content=body, headers=headers)


async def said(slack: FakeHttp, n: int) -> str:
    def answer() -> str | None:
        for seen in slack.requests:
            if seen.path == f"/response/{n}":
                return str(seen.body["text"])
        return None

    return await eventually(answer)  # type: ignore[no-any-return]


def refusals(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload->'data'->>'error' FROM audit_events WHERE type = 'message.rejected' "
            "AND payload->>'actor' = 'gateway' ORDER BY seq"
        ).fetchall()
    return [r[0] for r in rows]


async def prod_plan(system: System, app: str, user: str = "alice") -> str:
    answer = await system.command(f"deploy qwen 2.5 7b for {app}", env="prod", user=user)
    assert answer["requires_approval"] is True, answer
    await system.wait_status(answer["plan_id"], "pending_approval")
    return str(answer["plan_id"])


async def test_an_approval_request_is_block_kit_and_a_linked_approver_approves_it_in_slack(
    system: System, slack: FakeHttp
) -> None:
    plan_id = await prod_plan(system, "slack-ok")
    message = await approval_message(slack, plan_id)
    assert message["blocks"][0]["text"]["text"] == "Approval needed: slack-ok-prod"
    fields = " ".join(f["text"] for b in message["blocks"] if b["type"] == "section" for f in b.get("fields", []))
    assert "Qwen/Qwen2.5-7B-Instruct" in fields and "/h" in fields and "alice" in fields
    approve = button(message, "approve")
    value = json.loads(approve["value"])
    waiting = await system.wait_status(plan_id, "pending_approval")
    assert value == {"plan_id": plan_id, "plan_hash": waiting["details"]["waiting"]["plan_hash"]}
    assert button(message, "reject")["value"] == approve["value"]

    response = await send(system, click(slack, "UBOB0001", approve["value"]))
    assert response.status_code == 200 and response.content == b""
    assert await said(slack, 1) == f":white_check_mark: Approved by bob (plan {plan_id})"
    await system.wait_status(plan_id, "deployed")
    again = await send(system, click(slack, "UCAROL01", approve["value"], n=2))
    assert again.status_code == 200
    assert "already approved" in await said(slack, 2)  # no longer pending: the message says so


async def test_forged_stale_and_replayed_callbacks_are_refused_and_recorded(
    system: System, slack: FakeHttp, database_url: str
) -> None:
    plan_id = await prod_plan(system, "slack-forged")
    value = button(await approval_message(slack, plan_id), "approve")["value"]
    forged = await send(system, click(slack, "UBOB0001", value), secret="not-the-secret")
    assert forged.status_code == 401 and "does not match" in forged.json()["detail"]
    stale = await send(system, click(slack, "UBOB0001", value), at=time.time() - 600)
    assert stale.status_code == 401 and "5 minutes" in stale.json()["detail"]
    body = urlencode({"payload": json.dumps(click(slack, "UBOB0001", value, n=3))}).encode()
    at = time.time()
    first = await send(system, {}, raw=body, at=at)
    assert first.status_code == 200
    replay = await send(system, {}, raw=body, at=at)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
    unsigned = await system.client.post(
        "/api/integrations/slack/interactions",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    assert await said(slack, 3) == f":white_check_mark: Approved by bob (plan {plan_id})"
    await system.wait_status(plan_id, "deployed")  # the one genuine click counted, once
    await system.settled()
    recorded = refusals(database_url)
    assert sum("does not match" in r for r in recorded) == 1 and any("replay" in r for r in recorded)
    assert any("5 minutes" in r for r in recorded)


async def test_unlinked_users_requesters_and_viewers_change_nothing(
    system: System, slack: FakeHttp, database_url: str
) -> None:
    plan_id = await prod_plan(system, "slack-refused", user="dave")  # dave deploys and approves
    value = button(await approval_message(slack, plan_id), "approve")["value"]
    for n, who, says in [
        (1, "UNOBODY1", "not linked"),
        (2, "UDAVE001", "the requester cannot approve their own plan"),
        (3, "UVIC0001", "approver role"),
    ]:
        assert (await send(system, click(slack, who, value, n=n))).status_code == 200
        assert says in await said(slack, n)
    stale_hash = json.dumps({"plan_id": plan_id, "plan_hash": "0" * 64})
    assert (await send(system, click(slack, "UBOB0001", stale_hash, n=4))).status_code == 200
    assert "Not counted (bob)" in await said(slack, 4)
    await system.settled()
    assert (await system.plan(plan_id))["status"] == "pending_approval"
    recorded = refusals(database_url)
    assert any("UNOBODY1 is not linked" in r for r in recorded)
    for who in ("dave", "vic", "bob"):
        assert any(r.startswith(f"{who}: ") for r in recorded), (who, recorded)


@pytest.mark.parametrize("system", [{"two_approvers_over_usd_per_hour": 1.0}], indirect=True)
async def test_a_two_approver_plan_needs_two_slack_users(system: System, slack: FakeHttp) -> None:
    plan_id = await prod_plan(system, "slack-two")
    value = button(await approval_message(slack, plan_id), "approve")["value"]
    assert (await send(system, click(slack, "UBOB0001", value, n=1))).status_code == 200
    assert await said(slack, 1) == f":white_check_mark: Approved by bob (plan {plan_id})"
    assert (await send(system, click(slack, "UBOB0001", value, n=2))).status_code == 200
    assert "already approved" in await said(slack, 2)  # the same person twice counts once
    assert (await system.plan(plan_id))["status"] == "pending_approval"
    assert (await send(system, click(slack, "UCAROL01", value, n=3))).status_code == 200
    plan = await system.wait_status(plan_id, "deployed")
    assert sorted(d["approver"] for d in plan["details"]["decisions"]) == ["bob", "carol"]


async def test_reject_asks_for_a_reason_then_rejects_with_it(system: System, slack: FakeHttp) -> None:
    plan_id = await prod_plan(system, "slack-no")
    value = button(await approval_message(slack, plan_id), "reject")["value"]
    assert (await send(system, click(slack, "UBOB0001", value, "reject_plan", n=5))).status_code == 200
    opened: Seen = await eventually(lambda: next((s for s in slack.requests if s.path == "/api/views.open"), None))
    assert opened.headers["authorization"] == "Bearer xoxb-test-token" and opened.body["trigger_id"] == "1234.5"
    view = opened.body["view"]
    assert (await system.plan(plan_id))["status"] == "pending_approval"  # nothing decided without a reason
    submission = {
        "type": "view_submission",
        "user": {"id": "UBOB0001"},
        "view": {
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": "GPU quota is <b>low</b>"}}}
            },
        },
    }
    assert (await send(system, submission)).status_code == 200
    text = await said(slack, 5)
    assert text == f":x: Rejected by bob: GPU quota is <b>low</b> (plan {plan_id})"
    update = next(s for s in slack.requests if s.path == "/response/5").body
    assert "&lt;b&gt;" in update["blocks"][0]["text"]["text"]  # shown as text, never as markup
    plan = await system.wait_status(plan_id, "rejected")
    assert plan["details"]["approval"]["reason"] == "GPU quota is <b>low</b>"


def test_slack_users_are_linked_listed_and_unlinked_from_the_cli(tmp_path: Path) -> None:
    env = {"API_KEYS": api_keys_env(), "SLACK_USERS_FILE": str(tmp_path / "links.json"), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.runtime.cli", "slack", *args],
            env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    assert cli("link", "UBOB0001", "bob").returncode == 0
    assert json.loads(cli("list").stdout) == {"slack_user_id": "UBOB0001", "user_id": "bob"}
    assert (tmp_path / "links.json").stat().st_mode & 0o777 == 0o600
    nobody = cli("link", "UEVE0001", "eve")
    assert nobody.returncode == 2 and "no active API key" in nobody.stderr
    bad = cli("link", "not-a-slack-id", "bob")
    assert bad.returncode == 2 and "not a Slack user id" in bad.stderr
    assert cli("unlink", "UBOB0001").returncode == 0 and cli("list").stdout == ""
    assert cli("unlink", "UBOB0001").returncode == 2


async def test_hostile_bodies_change_nothing_and_the_route_keeps_answering(
    system: System, slack: FakeHttp, database_url: str
) -> None:
    plan_id = await prod_plan(system, "slack-hostile")
    value = button(await approval_message(slack, plan_id), "approve")["value"]
    for raw in (
        b"payload=%00%00%00",  # NUL, not JSON
        urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "UBOB0001\x00"}})}).encode(),
        urlencode({"payload": json.dumps({"type": "view_submission", "view": {"callback_id": "other"}})}).encode(),
        b"no-payload-at-all",
    ):
        assert (await send(system, {}, raw=raw)).status_code == 200  # signed, so Slack needs no retry; nothing acted
    oversized = b"payload=" + b"x" * (system.settings.max_body_bytes + 1)
    assert (await send(system, {}, raw=oversized)).status_code == 413
    forged_plan = json.dumps({"plan_id": "../../etc/passwd\x00", "plan_hash": None})
    assert (await send(system, click(slack, "UBOB0001", forged_plan, n=7))).status_code == 200
    await found(lambda: any("plan_id" in r and "not an approval interaction" in r for r in refusals(database_url)))
    assert (await system.plan(plan_id))["status"] == "pending_approval"
    assert (await send(system, click(slack, "UBOB0001", value, n=8))).status_code == 200  # still answering
    assert await said(slack, 8) == f":white_check_mark: Approved by bob (plan {plan_id})"
