"""The seed's dashboard, unchanged, against this gateway: the requests its `frontend/src/lib/api.ts`
and `hooks.ts` make (paths, methods, bodies, recorded here) and the fields of each answer it reads.
Its live progress is `EventSource('/api/events/{plan_id}')`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, running, system_settings
from tests.integration.test_audit_api import read_events, served
from tests.keys import secret

pytestmark = pytest.mark.integration

# What the seed client sends (its body for a command carries user_id and constraints too).
COMMAND = {
    "command": "deploy llama-3.1 8B for seed-client",
    "user_id": "dashboard-user@agentops.ai",
    "env": "staging",
    "constraints": {"budget_usd_per_hour": 20.0},
}


def reads(body: dict[str, Any], *fields: str) -> None:
    """The fields the seed client reads are there."""
    missing = [f for f in fields if f not in body]
    assert not missing, (missing, body)


async def test_the_seed_client_s_requests_get_the_answers_it_reads(nats_url: str, database_url: str) -> None:
    settings = system_settings(nats_url, database_url)
    runner = running(settings)
    async with runner as client:
        system = System(client, settings)
        answer = (await client.post("/api/agent/command", json=COMMAND)).json()
        reads(answer, "command_id", "status", "result")
        reads(answer["result"], "plan_id", "status", "artifact", "requires_approval")
        plan_id = answer["result"]["plan_id"]

        async with served(runner.app) as base, httpx.AsyncClient(base_url=base, timeout=None) as http:
            # the seed client follows its command live, from after it was sent
            url = f"/api/events/{plan_id}?api_key={secret('alice')}"
            async with http.stream("GET", url) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                seen = await read_events(stream, 5)
            unknown = await http.get(f"/api/events/no-such-plan?api_key={secret('alice')}")
            assert unknown.status_code == 404
        assert {e["event"] for e in seen} == {"message"}  # unnamed: the seed's `onmessage` gets each one
        types = [e["data"]["type"] for e in seen]
        assert types[0] == "intent.received" and types[-1] == "deployment.status"
        assert {e["data"]["plan_id"] for e in seen} == {plan_id}  # only this plan's events
        assert seen[-1]["data"]["data"]["status"] == "deployed"

        for path, fields in (
            ("/api/metrics/deployments/active", ("count", "deployments")),
            ("/api/metrics/approvals/pending", ("count", "approvals")),
            ("/api/metrics/costs/monthly", ("amount", "currency", "trend", "percent_change", "period")),
            ("/api/deployments", ("deployments", "count")),
        ):
            response = await client.get(path)
            assert response.status_code == 200, path
            reads(response.json(), *fields)
        listed = (await client.get("/api/deployments")).json()["deployments"][0]
        reads(listed, "plan_id", "status", "user_id", "intent", "env", "artifact", "evidence", "created_at")
        reads(listed["artifact"], "model_name", "endpoint_name", "instance_type", "instance_count")

        prod = (await client.post("/api/agent/command", json={**COMMAND, "env": "prod"})).json()
        assert prod["result"]["requires_approval"] is True
        await system.wait_status(prod["result"]["plan_id"], "pending_approval")
        pending = (await client.get("/approvals")).json()
        reads(pending[0], "plan_id", "intent", "requested_by", "artifact")
        decided = await client.post(
            "/approve",
            json={"plan_id": prod["result"]["plan_id"], "decision": "approved", "approver": "bob"},
            headers=system.auth("bob"),
        )
        assert decided.status_code == 200, decided.text

        for method, action in (("POST", "pause"), ("POST", "restart")):
            response = await client.request(method, f"/api/deployments/{plan_id}/{action}")
            assert response.status_code == 200 and response.json()["success"] is True, response.text
            reads(response.json(), "message")
            await system.wait_status(plan_id, "paused" if action == "pause" else "deployed")
        details = (await client.get(f"/plan/{plan_id}")).json()  # getDeploymentDetails
        reads(details["plan"], "plan_id", "status", "artifact", "created_at")
        gone = await client.delete(f"/api/deployments/{plan_id}", params={"hard_delete": "false"})
        assert gone.status_code == 200 and gone.json()["success"] is True
