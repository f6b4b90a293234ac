"""Database setup: the schema as SQLAlchemy Core tables, engines per role, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


def make_engine(url: str, role: str | None = None, **kwargs: Any) -> AsyncEngine:
    """An engine whose every connection assumes `role` (least privilege even for an owner login)."""
    engine = create_async_engine(async_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5, **kwargs)
    if role:

        @event.listens_for(engine.sync_engine, "connect")
        def _assume_role(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute(f'SET ROLE "{role}"')
            cursor.close()

    return engine


def run_migrations(url: str) -> None:
    """Bring the database to the newest schema (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    command.upgrade(config, "head")
