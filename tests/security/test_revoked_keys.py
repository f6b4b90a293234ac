"""A revoked key stops working everywhere, an open event stream included."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.gateway.auth import KeyFile, Role
from tests.integration.conftest import running, system_settings
from tests.integration.test_audit_api import served

pytestmark = pytest.mark.integration


async def test_a_revoked_keys_open_event_stream_ends_within_seconds(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    keys = KeyFile(tmp_path / "keys.json")
    secret, record = keys.create("zed", [Role.VIEWER])
    settings = system_settings(nats_url, database_url, api_keys_file=tmp_path / "keys.json")
    runner = running(settings)
    async with runner as client, served(runner.app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        seen: list[str] = []

        async def follow() -> None:
            headers = {"Authorization": f"Bearer {secret}"}
            async with http.stream("GET", "/api/events", headers=headers) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    seen.append(line)

        reading = asyncio.create_task(follow())
        for _ in range(100):  # the stream is open once its first line arrived
            if seen:
                break
            await asyncio.sleep(0.05)
        assert seen, "the stream never opened"
        keys.revoke(record.id)
        await asyncio.wait_for(reading, 10)  # it ends by itself; a hang fails here
        assert "event: revoked" in seen
        refused = await client.get("/api/deployments", headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 401
