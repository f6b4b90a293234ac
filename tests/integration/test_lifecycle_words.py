"""Lifecycle commands typed in words take the same path as the dashboard's buttons."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def say(system: System, text: str, env: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = {"command": text} | ({"env": env} if env else {})
    response = await system.client.post("/api/agent/command", json=body)
    return response.status_code, response.json()


async def test_pause_restart_scale_and_tear_down_by_name(system: System) -> None:
    plan_id = (await system.command("deploy llama-3.1 8B for chatbot-x", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")

    status, body = await say(system, "pause chatbot-x")
    assert status == 202 and body["action"] == "pause" and body["plan_id"] == plan_id
    assert "chatbot-x-staging" in body["message"]
    await system.wait_status(plan_id, "paused")

    status, body = await say(system, "please restart the chatbot-x deployment in staging")
    assert (status, body["action"]) == (202, "restart")
    await system.wait_status(plan_id, "deployed")

    status, body = await say(system, "scale chatbot-x to two instances")
    assert (status, body["action"]) == (202, "scale")
    for _ in range(200):  # the new count shows while it is still deploying: wait for both
        plan = await system.plan(plan_id)
        if plan["artifact"]["instance_count"] == 2 and plan["status"] == "deployed":
            break
        await asyncio.sleep(0.05)
    assert plan["artifact"]["instance_count"] == 2 and plan["status"] == "deployed"

    status, body = await say(system, "tear down chatbot-x in staging")
    assert (status, body["action"]) == (202, "delete")
    await system.wait_status(plan_id, "deleted")
    status, body = await say(system, "pause chatbot-x")
    assert status == 404 and "no live deployment of chatbot-x" in body["detail"]


async def test_an_action_the_state_does_not_allow_is_409_with_the_reason(system: System) -> None:
    plan_id = (await system.command("deploy mistral 7b for notes-app", env="staging"))["plan_id"]
    await system.wait_status(plan_id, "deployed")
    status, body = await say(system, "restart notes-app")
    assert status == 202
    await system.wait_status(plan_id, "deployed")
    assert (await say(system, "pause notes-app"))[0] == 202
    await system.wait_status(plan_id, "paused")
    status, body = await say(system, "pause notes-app")
    assert status == 409 and "paused" in body["detail"]


async def test_ambiguous_or_incomplete_lifecycle_commands_say_what_to_add(system: System) -> None:
    staging = (await system.command("deploy llama-3.1 8B for twin-app", env="staging"))["plan_id"]
    dev = (await system.command("deploy llama-3.1 8B for twin-app", env="dev"))["plan_id"]
    await system.wait_status(staging, "deployed")
    await system.wait_status(dev, "deployed")

    status, body = await say(system, "pause twin-app")
    assert status == 409 and "say which" in body["detail"] and "dev and staging" in body["detail"]
    status, body = await say(system, "pause twin-app", env="dev")  # the dashboard's env selector disambiguates
    assert status == 202 and body["plan_id"] == dev

    assert (await say(system, "scale twin-app"))[0] == 422
    status, body = await say(system, "scale twin-app in staging to 9 instances")
    assert status == 422 and "over the limit" in body["detail"]
    status, body = await say(system, "pause")
    assert status == 422 and "say which deployment" in body["detail"]


async def test_a_viewer_cannot_pause_by_words_either(system: System) -> None:
    response = await system.client.post(
        "/api/agent/command", json={"command": "pause chatbot-x"}, headers=system.auth("vic")
    )
    assert response.status_code == 403
