"""Each service logs in as its own role with only its privileges; none is or can become a superuser."""

from __future__ import annotations

import psycopg
import pytest

from tests.infra import login

pytestmark = pytest.mark.integration

LOGINS = ("auditor", "gateway", "guardian", "cli", "owner")
INSERT = (
    "INSERT INTO audit_events (seq, event_id, type, plan_id, actor, occurred_at, recorded_at, payload, prev_hash, "
    "hash) "
    "VALUES (1000, 'x', 't', 'p', 'a', now(), now(), '{}', 'h', 'h')"
)


def run(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def refused(url: str, statement: str) -> bool:
    try:
        run(url, statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    except psycopg.Error as exc:
        return "permission denied" in str(exc) or "must be" in str(exc) or "append-only" in str(exc)
    return False


@pytest.mark.parametrize("who", LOGINS)
def test_no_login_is_or_can_become_a_superuser(database_url: str, who: str) -> None:
    url = login(database_url, who)
    with psycopg.connect(url, autocommit=True) as conn:
        me, powers = conn.execute(
            "SELECT current_user, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone()  # type: ignore[misc]
        assert not powers
        conn.execute("RESET ROLE")  # what undid the old SET ROLE: here it changes nothing
        assert conn.execute("SELECT current_user").fetchone() == (me,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE postgres")
    assert refused(url, "CREATE ROLE intruder SUPERUSER")
    assert refused(url, "ALTER ROLE CURRENT_USER SUPERUSER")


@pytest.mark.parametrize("who", ["gateway", "guardian", "cli"])
def test_readers_read_and_write_nothing(database_url: str, who: str) -> None:
    url = login(database_url, who)
    for table in ("audit_events", "deployments", "approvals"):
        run(url, f"SELECT count(*) FROM {table}")
    assert refused(url, INSERT)
    assert refused(url, "UPDATE deployments SET status = 'deployed'")
    assert refused(url, "DELETE FROM approvals")
    assert refused(url, "CREATE TABLE mine (x int)")


def test_the_auditor_appends_and_projects_but_never_rewrites(database_url: str) -> None:
    url = login(database_url, "auditor")
    run(url, INSERT)
    run(url, "UPDATE deployments SET status = status")  # the projections are its to keep
    assert refused(url, "UPDATE audit_events SET actor = 'mallory'")
    assert refused(url, "DELETE FROM audit_events")
    assert refused(url, "TRUNCATE audit_events")
    assert refused(url, "ALTER TABLE audit_events DISABLE TRIGGER USER")
    assert refused(url, "SET session_replication_role = replica")
    assert refused(url, "CREATE TABLE mine (x int)")


def test_even_the_owner_cannot_rewrite_the_log_without_disabling_its_guard(database_url: str) -> None:
    url = login(database_url, "owner")
    run(url, INSERT.replace("1000", "1001").replace("'x'", "'y'"))
    assert refused(url, "UPDATE audit_events SET actor = 'mallory'")
    assert refused(url, "SET session_replication_role = replica")
