"""One place chooses the real servers the tests run against.

NATS: AGENTOPS_TEST_NATS_URL when set (the test's stream is reset first), else a fresh embedded
nats-server per test (it starts in ~50 ms), so consumers and streams never leak between tests.
PostgreSQL: AGENTOPS_TEST_DATABASE_URL when set, else a testcontainers PostgreSQL when a Docker
engine answers, else the embedded cluster; every test gets its own freshly migrated database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

from services.runtime.dbroles import apply_roles, login_url  # noqa: E402
from services.runtime.embedded import EmbeddedNats, EmbeddedPostgres  # noqa: E402
from shared.db import run_migrations  # noqa: E402
from tests.infra import IDENTITIES, PASSWORDS, connect, create_stream  # noqa: E402


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a PostgreSQL server (its `postgres` database) on which tests may create databases."""
    if url := os.environ.get("AGENTOPS_TEST_DATABASE_URL"):
        yield url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg")).start()
    try:
        yield pg.url("postgres")
    finally:
        pg.stop()


@pytest.fixture
def database_url(postgres_server: str) -> Iterator[str]:
    """A fresh database with the newest schema, dropped after the test. As in production, the
    logins are created first and the owner migrates; the URL yielded is the superuser's (for
    tests that look underneath), each service gets its own login (tests/infra.py `login`)."""
    name = f"agentops_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    apply_roles(admin, name, PASSWORDS)
    run_migrations(login_url(url, "owner", PASSWORDS))
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A nats-server that admits only the AgentOps identities, with the AGENTOPS stream created
    (by the admin identity: services may not create it)."""
    if url := os.environ.get("AGENTOPS_TEST_NATS_URL"):
        asyncio.run(_reset_streams(url))
        create_stream(url)
        yield url
        return
    with secured_nats_server(tmp_path / "nats") as url:
        yield url


@contextlib.contextmanager
def secured_nats_server(folder: Path) -> Iterator[str]:
    """A nats-server of the test's own that admits only the AgentOps identities, stream created."""
    server = EmbeddedNats(folder, identities=IDENTITIES).start()
    try:
        create_stream(server.url)
        yield server.url
    finally:
        server.stop()


async def _reset_streams(url: str) -> None:
    """Every stream a test may have left: the event stream and every service's KV buckets."""
    nc = await connect(url)
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        for name in await js.streams_info():
            if name.config.name == "AGENTOPS" or (name.config.name or "").startswith("KV_"):
                await js.delete_stream(name.config.name)
    await nc.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


__all__ = ["AsyncIterator"]
