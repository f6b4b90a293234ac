"""Database logins: each service its own role with only its own privileges (DESIGN.md, "Trust").

| login | may | used by |
| --- | --- | --- |
| agentops_owner | own the schema; run migrations | `agentops migrate`, `agentops up` |
| agentops_auditor | SELECT, INSERT the log; SELECT, INSERT, UPDATE the projections | auditor, `audit rebuild` |
| agentops_gateway | SELECT (member of agentops_reader) | gateway |
| agentops_guardian | SELECT (member of agentops_reader) | guardian (month-to-date spend) |
| agentops_reader | SELECT | `audit verify/export/replay`, outside readers |

None is a superuser, can create roles or databases, bypass row security or replicate; none is a
member of a role that can. The grants themselves live in the migrations (0001, 0003).
"""

from __future__ import annotations

import re
import secrets

import psycopg

from shared.db import with_login

OWNER = "agentops_owner"
LOGINS = (OWNER, "agentops_auditor", "agentops_gateway", "agentops_guardian", "agentops_reader")
READERS = ("agentops_gateway", "agentops_guardian")
SERVICE_LOGIN = {
    "auditor": "agentops_auditor",
    "gateway": "agentops_gateway",
    "guardian": "agentops_guardian",
    "cli": "agentops_reader",
    "owner": OWNER,
}
NO_POWERS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"


def new_passwords() -> dict[str, str]:
    return {role: secrets.token_hex(24) for role in LOGINS}


def roles_sql(database: str, passwords: dict[str, str] | None = None) -> list[str]:
    """The statements a superuser (or a role with CREATEROLE) runs once per cluster and database."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,63}", database):
        raise ValueError(f"database name {database!r}: use letters, digits and underscores")
    statements = []
    for role in LOGINS:
        statements.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role}; END IF; END $$"
        )
        password = (passwords or {}).get(role)
        if password is not None and not re.fullmatch(r"[A-Za-z0-9]{16,128}", password):
            raise ValueError("generated passwords are letters and digits only")
        statements.append(f"ALTER ROLE {role} WITH {NO_POWERS}" + (f" PASSWORD '{password}'" if password else ""))
    statements += [f"GRANT agentops_reader TO {role}" for role in READERS]
    statements += [
        f'ALTER DATABASE "{database}" OWNER TO {OWNER}',
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO {", ".join(LOGINS)}',
    ]
    return statements


def apply_roles(admin_url: str, database: str, passwords: dict[str, str] | None = None) -> None:
    """Create or update the logins and the database (as a superuser), and hand the schema to the
    owner: an older install whose tables a superuser created keeps working."""
    server = with_login(admin_url).rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
        for statement in roles_sql(database, passwords):
            conn.execute(statement)  # type: ignore[arg-type]  # built from a fixed vocabulary above
    with psycopg.connect(f"{server}/{database}", autocommit=True) as conn:
        conn.execute(f"ALTER SCHEMA public OWNER TO {OWNER}")
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner <> %s", (OWNER,)
        ).fetchall()
        for (table,) in tables:
            conn.execute(f'ALTER TABLE public."{table}" OWNER TO {OWNER}')  # type: ignore[arg-type]
        if conn.execute("SELECT 1 FROM pg_proc WHERE proname = 'audit_events_append_only'").fetchone():
            conn.execute(f"ALTER FUNCTION audit_events_append_only() OWNER TO {OWNER}")


def login_url(url: str, service: str, passwords: dict[str, str] | None = None) -> str:
    role = SERVICE_LOGIN[service]
    return with_login(url, role, (passwords or {}).get(role, ""))
