"""Database setup: the schema as SQLAlchemy Core tables, engines per role, migrations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pydantic_core
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.errors import StartupError

metadata = MetaData()

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    Column("plan_id", String(200), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # chain 2 (migration 0003): the hash covers every column above, and the producer's signature
    Column("signer", String(200)),
    Column("signer_key", String(64)),
    Column("signature", String(100)),
    Column("chain_version", SmallInteger, nullable=False, server_default="1"),
    # migration 0004: the exact JSON the producer signed and the hash covers (NULL on older rows)
    Column("canonical", Text),
)

deployments = Table(
    "deployments",
    metadata,
    Column("plan_id", String(200), primary_key=True),
    Column("status", String(32), nullable=False, index=True),
    Column("user_id", String(200), nullable=False),
    Column("intent", Text, nullable=False),
    Column("env", String(16), nullable=False),
    Column("artifact", JSONB),
    Column("evidence", JSONB, nullable=False),
    Column("validation_errors", JSONB, nullable=False),
    Column("details", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("plan_id", String(200), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("request", JSONB, nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("approvers", JSONB, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def async_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs; use asyncpg underneath."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url.split('://')[0]}://...")


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine that logs in as the URL's user: each service has its own login role, with only
    its own privileges (never a superuser's login narrowed by SET ROLE, which RESET ROLE undoes)."""
    kwargs.setdefault("json_serializer", jsonb_text)
    return create_async_engine(async_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5, **kwargs)


def jsonb_text(value: Any) -> str:
    """The text a jsonb value is sent as: JSON made in Rust (the log and its projections send
    several jsonb values per event), NaN and infinity written as such so PostgreSQL refuses them
    as json.dumps had them refused. What it cannot write (a lone surrogate) goes through
    json.dumps, whose escape PostgreSQL refuses as data: the log records a refusal, never loops."""
    try:
        return pydantic_core.to_json(value, inf_nan_mode="constants").decode()
    except (pydantic_core.PydanticSerializationError, UnicodeError):
        return json.dumps(value)


def with_login(url: str, user: str | None = None, password: str | None = None) -> str:
    """The same server and database, logged in as another user (and/or with a password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = host + (f":{parts.port}" if parts.port else "")
    name = user if user is not None else unquote(parts.username or "")
    secret = password if password is not None else (unquote(parts.password) if parts.password else None)
    if name:
        netloc = quote(name, safe="") + (f":{quote(secret, safe='')}" if secret else "") + "@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def refuse_superuser(engine: AsyncEngine, service: str) -> None:
    """A service that could become a superuser is not least privilege: stop with the fix."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT r.rolname, r.rolsuper OR r.rolcreaterole OR r.rolbypassrls "
                    "OR pg_has_role(session_user, 'pg_write_all_data', 'USAGE') "
                    "OR EXISTS (SELECT 1 FROM pg_roles s "
                    "WHERE s.rolsuper AND pg_has_role(session_user, s.oid, 'MEMBER')) "
                    "FROM pg_roles r WHERE r.rolname = session_user"
                )
            )
        ).first()
    if row is not None and row[1]:
        raise StartupError(
            f"{service}: DATABASE_URL logs in as {row[0]}, which is or can become a superuser; give the "
            f"service its own login (`agentops db roles` prints the SQL)"
        )


def run_migrations(url: str) -> None:
    """Bring the database to the newest schema (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    command.upgrade(config, "head")
