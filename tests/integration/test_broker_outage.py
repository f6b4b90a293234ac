"""While the broker is away the gateway refuses commands with 503 and says why; then accepts again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedNats
from tests.infra import IDENTITIES, ensure_stream_as_admin
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration


async def test_commands_get_503_while_nats_is_down_and_succeed_after_it_returns(
    database_url: str, tmp_path: Path
) -> None:
    nats = EmbeddedNats(tmp_path / "nats", identities=IDENTITIES).start()
    try:
        await ensure_stream_as_admin(nats.url)
        settings = system_settings(nats.url, database_url)
        async with running(settings) as client:
            system = System(client, settings)
            first = await system.command("deploy llama-3.1 8B for outage-a", env="staging")
            await system.wait_status(first["plan_id"], "deployed")

            nats.kill()  # kill -9: no goodbye to the clients
            await asyncio.sleep(0.5)
            refused = await client.post("/api/agent/command", json={"command": "deploy llama-3.1 8B for outage-b"})
            assert refused.status_code == 503
            assert "broker" in refused.json()["detail"] and "nothing was accepted" in refused.json()["detail"]
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["broker"] == "unreachable"

            nats.start()  # the same port and store
            for _ in range(100):  # the clients reconnect by themselves
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            again = await system.command("deploy llama-3.1 8B for outage-c", env="staging")
            await system.wait_status(again["plan_id"], "deployed", timeout=20)
    finally:
        nats.stop()
