"""Bad input gets a clear 4xx and publishes nothing."""

from __future__ import annotations

import pytest

from tests.infra import connect
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def stream_messages(url: str) -> int:
    nc = await connect(url)
    try:
        return int((await nc.jetstream().stream_info("AGENTOPS")).state.messages)
    finally:
        await nc.close()


BAD_BODIES = [
    (b"{not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (b"{}", "command is required"),
    (b'{"command": ""}', "command"),
    (b'{"command": "   "}', "command"),
    (b'{"command": "deploy llama 3.1 8b for x", "env": "moon"}', "env"),
    (b'{"command": "deploy llama 3.1 8b for x", "colour": "red"}', "colour is not a known field"),
    (b'{"command": 42}', "command"),
    (b'{"command": "deploy llama 3.1 8b for x", "user_id": "a b; drop table"}', "user_id"),
]


@pytest.mark.parametrize(("body", "says"), BAD_BODIES)
async def test_malformed_command_is_refused_with_a_message_and_nothing_is_published(
    system: System, body: bytes, says: str
) -> None:
    before = await stream_messages(system.settings.nats_url)

    response = await system.client.post(
        "/api/agent/command", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert await stream_messages(system.settings.nats_url) == before


async def test_over_long_command_is_refused(system: System) -> None:
    before = await stream_messages(system.settings.nats_url)
    response = await system.client.post("/api/agent/command", json={"command": "deploy " + "x" * 1200})
    assert response.status_code == 422
    assert "limit is 1000" in response.json()["detail"]
    assert await stream_messages(system.settings.nats_url) == before


async def test_body_over_the_size_limit_is_413(system: System) -> None:
    huge = b'{"command": "' + b"a" * 200_000 + b'"}'
    response = await system.client.post(
        "/api/agent/command", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


async def test_bad_approval_bodies_are_422(system: System) -> None:
    for body in (
        {"plan_id": "x", "decision": "maybe", "approver": "bob"},
        {"plan_id": "../etc", "decision": "approved", "approver": "bob"},
        {"decision": "approved"},
    ):
        response = await system.client.post("/approve", json=body, headers=system.auth("bob"))
        assert response.status_code == 422, body


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"instance_count": "2"}', "instance_count"),
        (b'{"instance_count": true}', "instance_count"),
        (b'{"instance_count": 2.5}', "instance_count"),
        (b'{"instance_count": 0}', "pause"),
        (b'{"instance_count": 99999999999999999999}', "instance_count"),
    ],
)
async def test_an_instance_count_is_a_whole_number_from_1_to_4(system: System, body: bytes, says: str) -> None:
    response = await system.client.post(
        "/api/deployments/any-plan/scale", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and says in response.json()["detail"], response.text


@pytest.mark.parametrize(
    "constraints",
    [{"instance_count": "2"}, {"instance_count": True}, {"budget_usd_per_hour": "20"}, {"budget_usd_per_hour": 0}],
)
async def test_constraints_are_typed_strictly(system: System, constraints: dict[str, object]) -> None:
    before = await stream_messages(system.settings.nats_url)
    response = await system.client.post(
        "/api/agent/command", json={"command": "deploy llama 3.1 8b for x", "constraints": constraints}
    )
    assert response.status_code == 422, response.text
    assert await stream_messages(system.settings.nats_url) == before


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("deploy llama 3.1 8b for budget-zero with budget $0/hour", "$0/hour allows nothing"),
        ("deploy llama 3.1 8b for budget-neg with budget $-5/hour", "not an amount"),
        ("deploy llama 3.1 8b for budget-nan with budget $nan/hour", "not an amount"),
        ("deploy llama 3.1 8b for budget-inf with budget $1e400/hour", "not an amount"),
        ("deploy llama 3.1 8b for budget-huge with budget $250000/hour", "over the limit"),
    ],
)
async def test_a_budget_that_is_not_one_is_refused_not_replaced_by_the_cap(
    system: System, command: str, says: str
) -> None:
    answer = await system.command(command, env="staging")
    assert answer["status"] == "validation_failed" and says in answer["message"] + str(answer["validation_errors"])


async def test_scale_to_zero_in_words_says_pause_is_the_way(system: System) -> None:
    answer = await system.command("deploy llama-3.1 8B for zero-bot", env="staging")
    await system.wait_status(answer["plan_id"], "deployed")
    response = await system.client.post("/api/agent/command", json={"command": "scale zero-bot to 0 instances"})
    assert response.status_code == 422 and "pause zero-bot" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/audit?since=not-a-date",
        "/api/audit?since=2026-13-45T00:00:00Z",
        "/api/audit?since=0001-01-01T00:00:00%2B14:00",  # before year 1 once in UTC
        "/api/audit?until=9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
        "/api/audit?limit=100000000000000000000000",
        "/api/audit?cursor=-1",
        "/api/deployments?offset=-1",
        "/api/deployments?limit=1e3",
        "/api/events?after=99999999999999999999999",
    ],
)
async def test_out_of_range_dates_and_numbers_are_a_4xx(system: System, url: str) -> None:
    response = await system.client.get(url)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


async def test_a_time_without_a_zone_is_read_as_utc(system: System) -> None:
    response = await system.client.get("/api/audit?since=2026-01-01T00:00:00")
    assert response.status_code == 200, response.text
