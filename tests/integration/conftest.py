"""The whole system in one event loop: the five services against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from shared.settings import Settings
from tests.infra import for_service, service_app, settled
from tests.keys import api_keys_env, headers


@dataclass
class System:
    client: httpx.AsyncClient
    settings: Settings

    def auth(self, user: str) -> dict[str, str]:
        """Headers that act as ``user`` (see tests/keys.py); the client acts as alice, a deployer, by default."""
        return headers(user)

    async def command(self, text: str, env: str | None = None, user: str = "alice") -> dict[str, Any]:
        body: dict[str, Any] = {"command": text}
        if env:
            body["env"] = env
        response = await self.client.post("/api/agent/command", json=body, headers=headers(user))
        assert response.status_code in (200, 202), response.text
        return response.json()  # type: ignore[no-any-return]

    async def plan(self, plan_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/deployments/{plan_id}")
        assert response.status_code == 200, response.text
        return response.json()["plan"]  # type: ignore[no-any-return]

    async def settled(self) -> None:
        """Every event sent so far handled by every service and recorded by the auditor."""
        await settled(self.settings.nats_url)

    async def wait_status(self, plan_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        seen = None
        while asyncio.get_running_loop().time() < deadline:
            response = await self.client.get(f"/api/deployments/{plan_id}")
            if response.status_code == 200:
                seen = response.json()["plan"]
                if seen["status"] == status:
                    return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"plan {plan_id} never reached {status}; last seen {seen and seen['status']}")


def system_settings(nats_url: str, database_url: str, **overrides: Any) -> Settings:
    overrides.setdefault("api_keys", api_keys_env())
    return Settings(nats_url=nats_url, database_url=database_url, command_wait_seconds=10.0, **overrides)


@pytest.fixture
async def system(nats_url: str, database_url: str) -> AsyncIterator[System]:
    settings = system_settings(nats_url, database_url)
    async with running(settings) as client:
        yield System(client, settings)


class running:
    """Start every service; the gateway is reached through its ASGI app."""

    def __init__(self, settings: Settings, ports: dict[str, dict[str, Any]] | None = None, **wiring: Any) -> None:
        """`wiring`: what every service is built with besides its settings (a tracer provider);
        `ports`: what one service is built with (the executor's clock)."""
        self.settings, self.wiring, self.ports = settings, wiring, ports or {}
        self.stack = AsyncExitStack()

    async def __aenter__(self) -> httpx.AsyncClient:
        for name in ("auditor", "planner", "guardian", "executor"):
            app = service_app(name, for_service(self.settings, name), **self.wiring, **self.ports.get(name, {}))
            await self.stack.enter_async_context(app)
        app = self.app = service_app("gateway", for_service(self.settings, "gateway"), **self.wiring)
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        return await self.stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers("alice")
            )
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    httpx.post(f"{url}/moto-api/reset")  # moto keeps its state per process; each test starts empty
    yield url
    server.stop()
