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

from services.runtime.embedded import EmbeddedNats, EmbeddedPostgres  # noqa: E402
from shared.db import run_migrations  # noqa: E402


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
    """A fresh database with the newest schema, dropped after the test."""
    name = f"agentops_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    run_migrations(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    if url := os.environ.get("AGENTOPS_TEST_NATS_URL"):
        asyncio.run(_reset_stream(url))
        yield url
        return
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        yield server.url
    finally:
        server.stop()


async def _reset_stream(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in ("AGENTOPS", "KV_guardian-plans", "KV_executor-deployments"):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


__all__ = ["AsyncIterator"]
