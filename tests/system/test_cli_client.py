"""The terminal client against the live system: each verb, its exit codes, its --json shapes, and
the API's own words when something is refused. The gateway is served on a real socket; the client
runs as a user runs it, `agentops ...` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra import found
from tests.integration.conftest import System, running, system_settings
from tests.integration.test_audit_api import served
from tests.keys import secret

pytestmark = pytest.mark.integration


@dataclass
class Cli:
    base: str
    home: Path
    system: System

    async def __call__(self, *args: str, user: str = "alice", **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "AGENTOPS_URL": self.base,
            "AGENTOPS_API_KEY": secret(user),
            "AGENTOPS_HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "COLUMNS": "200",
            **env,
        }
        command = [sys.executable, "-m", "services.runtime.cli", *args]
        run = subprocess.run
        return await asyncio.to_thread(run, command, env=environ, capture_output=True, text=True, timeout=120)

    async def json(self, *args: str, user: str = "alice") -> Any:
        done = await self(*args, "--json", user=user)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
async def cli(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[Cli]:
    settings = system_settings(nats_url, database_url)
    runner = running(settings)
    async with runner as client, served(runner.app) as base:
        yield Cli(base, tmp_path, System(client, settings))


async def test_do_wait_follows_a_staging_deploy_to_deployed_and_ls_show_find_it(cli: Cli) -> None:
    done = await cli("do", "deploy llama-3.1 8B for cli-bot", "--env", "staging", "--wait")
    assert done.returncode == 0, done.stderr
    assert "ml.g6.xlarge" in done.stdout and "cli-bot-staging" in done.stdout and "deployed" in done.stdout
    listed = await cli.json("ls")
    (plan,) = [p for p in listed["deployments"] if p["artifact"]["endpoint_name"] == "cli-bot-staging"]
    assert plan["status"] == "deployed" and set(listed) >= {"deployments", "count"}
    table = await cli("ls")
    assert "cli-bot-staging" in table.stdout and plan["plan_id"][:8] in table.stdout
    shown = await cli.json("show", plan["plan_id"][:6])  # a prefix is enough
    assert shown["detail"]["plan"]["plan_id"] == plan["plan_id"] and set(shown) == {"detail", "history", "cost"}
    assert shown["history"][0]["type"] == "intent.received"
    text = await cli("show", "cli-bot-staging")  # so is the endpoint's name
    assert text.returncode == 0 and "deploy llama-3.1 8B for cli-bot" in text.stdout


async def test_a_prod_deploy_waits_and_the_requester_s_own_approval_is_refused_in_the_api_s_words(cli: Cli) -> None:
    done = await cli("do", "deploy llama-3.1 8B for cli-shop", "--env", "prod", "--wait", user="dave")
    assert done.returncode == 0 and "pending_approval" in done.stdout, done.stderr
    (waiting,) = await cli.json("approvals", user="bob")
    assert waiting["artifact"]["endpoint_name"] == "cli-shop-prod" and waiting["approvals_required"] == 1
    own = await cli("approve", waiting["plan_id"][:8], user="dave")  # dave asked for it (and may approve)
    assert own.returncode == 1 and "cannot approve their own plan" in own.stderr
    approved = await cli("approve", "cli-shop-prod", "--reason", "looks right", user="bob")
    assert approved.returncode == 0 and "approved by bob" in approved.stdout, approved.stderr
    await cli.system.wait_status(waiting["plan_id"], "deployed")


async def test_reject_needs_a_reason_and_records_who_rejected(cli: Cli) -> None:
    done = await cli("do", "deploy llama-3.1 8B for cli-nope", "--env", "prod", "--wait", user="dave")
    assert done.returncode == 0 and "pending_approval" in done.stdout, done.stderr
    silent = await cli("reject", "cli-nope-prod", user="bob")
    assert silent.returncode == 2 and "give a reason" in silent.stderr
    rejected = await cli("reject", "cli-nope-prod", "--reason", "not this quarter", user="bob")
    assert rejected.returncode == 0 and "rejected by bob" in rejected.stdout, rejected.stderr
    (plan,) = [p for p in (await cli.json("ls"))["deployments"] if p["artifact"]["endpoint_name"] == "cli-nope-prod"]
    await cli.system.wait_status(plan["plan_id"], "rejected")


async def test_lifecycle_verbs_and_a_refused_command(cli: Cli) -> None:
    first = await cli.json("do", "deploy llama-3.1 8B for cli-life", "--env", "staging")
    assert set(first) >= {"command_id", "status", "plan_id", "result"} and first["status"] == "success"
    await cli.system.wait_status(first["plan_id"], "deployed")
    paused = await cli("pause", "cli-life-staging")
    assert paused.returncode == 0 and "pause requested" in paused.stdout
    await cli.system.wait_status(first["plan_id"], "paused")
    assert (await cli("restart", first["plan_id"][:8])).returncode == 0
    await cli.system.wait_status(first["plan_id"], "deployed")
    scaled = await cli.json("scale", first["plan_id"], "2")
    assert scaled["action"] == "scale"
    deleted = await cli("delete", first["plan_id"])
    assert deleted.returncode == 0
    refused = await cli("do", "deploy llama 3.1 70b for cli-big with budget $2/hour")
    assert refused.returncode == 1 and "refused" in refused.stderr
    await cli.system.wait_status(first["plan_id"], "deleted")
    again = await cli("pause", first["plan_id"])
    assert again.returncode == 1 and "cannot pause a plan that is deleted" in again.stderr


async def test_bad_input_is_one_line_and_exit_2(cli: Cli, tmp_path: Path) -> None:
    unknown = await cli("show", "no-such-plan")
    assert unknown.returncode == 2 and "no plan matches 'no-such-plan'" in unknown.stderr
    await cli.json("do", "deploy llama-3.1 8B for cli-a", "--env", "staging")
    await cli.json("do", "deploy llama-3.1 8B for cli-b", "--env", "staging")
    ambiguous = await cli("show", "")
    assert ambiguous.returncode == 2 and "give more of the id" in ambiguous.stderr
    away = await cli("ls", AGENTOPS_URL="http://127.0.0.1:9")
    assert away.returncode == 2 and "cannot reach the gateway" in away.stderr and "Traceback" not in away.stderr
    nobody = await cli("ls", AGENTOPS_URL="", AGENTOPS_API_KEY="", AGENTOPS_HOME=str(tmp_path / "empty"))
    assert nobody.returncode == 2 and "no gateway to talk to" in nobody.stderr
    wrong = await cli("ls", AGENTOPS_API_KEY="aok_wrong")
    assert wrong.returncode == 1 and "401" in wrong.stderr


async def test_login_stores_the_url_and_key_privately_and_the_verbs_use_them(cli: Cli) -> None:
    done = await cli("login", cli.base, "--key", secret("vic"), AGENTOPS_URL="", AGENTOPS_API_KEY="")
    assert done.returncode == 0 and "as vic" in done.stdout, done.stderr
    stored = cli.home / "config" / "agentops" / "credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    listed = await cli("ls", "--json", AGENTOPS_URL="", AGENTOPS_API_KEY="")
    assert listed.returncode == 0 and "deployments" in json.loads(listed.stdout)
    denied = await cli("pause", "anything", AGENTOPS_URL="", AGENTOPS_API_KEY="")
    assert denied.returncode == 2  # no such plan (vic may look, and finds nothing to pause)


async def test_update_and_rollback_from_the_terminal(cli: Cli) -> None:
    first = await cli.json("do", "deploy qwen 2.5 7b for cli-upd", "--env", "staging")
    plan_id = first["plan_id"]
    await cli.system.wait_status(plan_id, "deployed")
    updated = await cli.json(
        "update", "cli-upd-staging", "--model", "mistralai/Mistral-7B-Instruct-v0.3", "--shift", "canary"
    )
    assert updated["action"] == "update"

    async def updated_plan() -> dict[str, Any] | None:
        plan = await cli.system.plan(plan_id)
        return plan if len(plan["details"]["history"]) == 2 else None

    plan = await found(updated_plan, 15, "the update's end")
    assert plan["artifact"]["model_name"] == "mistralai/Mistral-7B-Instruct-v0.3"
    assert plan["details"]["change"]["strategy"]["shift"] == "canary"
    back = await cli("rollback", plan_id[:8])
    assert back.returncode == 0 and "rollback requested" in back.stdout
    bad = await cli("update", plan_id, "--shift", "canary", "--percent", "90")
    assert bad.returncode == 1 and "percent: Input should be less than or equal to 50" in bad.stderr


async def test_schedules_from_the_terminal(cli: Cli) -> None:
    first = await cli.json("do", "deploy llama-3.1 8B for cli-sched", "--env", "staging")
    await cli.system.wait_status(first["plan_id"], "deployed")
    done = await cli(
        "schedules",
        "set",
        "cli-sched-staging",
        "--start",
        "07:30",
        "--stop",
        "19:00",
        "--tz",
        "Europe/Paris",
        "--idle-minutes",
        "45",
    )
    assert done.returncode == 0 and "running mon-fri 07:30-19:00 Europe/Paris" in done.stdout, done.stderr
    await cli.system.settled()
    as_json = await cli("schedules", "--json", "list")
    listed = json.loads(as_json.stdout)
    assert [(s["plan_id"], s["idle_pause_minutes"], s["schedule"]["timezone"]) for s in listed] == [
        (first["plan_id"], 45, "Europe/Paris")
    ]
    table = await cli("schedules", "list")
    assert "cli-sched-staging" in table.stdout and "45 min" in table.stdout and "alice" in table.stdout
    half = await cli("schedules", "set", first["plan_id"], "--start", "08:00")
    assert half.returncode == 2 and "both --start and --stop" in half.stderr
    bad = await cli("schedules", "set", first["plan_id"], "--start", "8", "--stop", "9", "--tz", "Nowhere/Land")
    assert bad.returncode == 1 and "is not a time zone" in bad.stderr
    removed = await cli("schedules", "remove", first["plan_id"][:8])
    assert removed.returncode == 0 and "no schedule and no idle pause" in removed.stdout
