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
from tests.infra import IDENTITIES

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
