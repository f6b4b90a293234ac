"""`agentops migrate` as compose's one-shot setup runs it: as the PostgreSQL superuser with the
logins' passwords from a secret, and as the admin identity on NATS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from services.runtime.embedded import EmbeddedPostgres
from services.runtime.provision import compose_secrets
from shared.db import with_login
from tests.infra import IDENTITIES, write_chain1_row

pytestmark = pytest.mark.integration


def agentops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_setup_creates_the_logins_schema_stream_and_published_keys(secured_nats: str, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    compose_secrets(secrets)
    pg = EmbeddedPostgres(tmp_path / "pg").start()
    try:
        env = {
            **os.environ,
            "NATS_URL": secured_nats,
            "DATABASE_URL": with_login(pg.url(), password=""),  # the password comes from the file
            "DATABASE_PASSWORD_FILE": str(pg.password_file),
            "DB_PASSWORDS_FILE": str(secrets / "db-passwords.json"),
            "IDENTITY_DIR": str(IDENTITIES),
            "AGENTOPS_HOME": str(tmp_path / "home"),
        }
        done = agentops(env, "migrate")
        assert done.returncode == 0, done.stderr
        assert "stream AGENTOPS and the signers bucket are up to date" in done.stdout
        gateway = (secrets / "agentops_gateway.password").read_text()
        login = with_login(pg.url(), "agentops_gateway", gateway)
        with psycopg.connect(login) as conn:
            assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (0,)
        keys = agentops({**env, "TRUSTED_SIGNERS_FILE": str(tmp_path / "absent.json")}, "audit", "keys")
        assert keys.returncode == 0, keys.stderr  # read from the agentops-signers bucket
        assert json.loads(keys.stdout) == json.loads((IDENTITIES / "signers.json").read_text())
    finally:
        pg.stop()


def test_a_database_an_older_version_made_as_superuser_is_handed_to_the_owner(tmp_path: Path) -> None:
    """Before per-service logins the superuser ran the migrations and owned the tables: the upgrade
    hands them to agentops_owner, which then migrates, and the old rows still verify."""
    import asyncio

    from alembic import command
    from alembic.config import Config

    from services.auditor.verify import verify
    from services.runtime.provision import database_logins
    from shared.db import MIGRATIONS_DIR, async_url

    pg = EmbeddedPostgres(tmp_path / "pg").start()
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", async_url(pg.url()).replace("%", "%%"))
        command.upgrade(config, "0002")  # the schema as the older version left it, owned by postgres
        write_chain1_row(pg.url())  # a row as the chain-1 auditor wrote it
        logins = database_logins(pg.url(), tmp_path / "home")
        with psycopg.connect(pg.url()) as conn:
            owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert owners == {"agentops_owner"} and version == ("0004",)
        verdict = asyncio.run(verify(logins["cli"]))
        assert verdict.ok and verdict.legacy == 1
    finally:
        pg.stop()
