"""Audit log, projections, append-only trigger and application roles.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None

ROLES = ("agentops_auditor", "agentops_reader")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("plan_id", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_plan_id", "audit_events", ["plan_id", "seq"])
    op.create_table(
        "deployments",
        sa.Column("plan_id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("intent", sa.Text, nullable=False),
        sa.Column("env", sa.String(16), nullable=False),
        sa.Column("artifact", JSONB),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("validation_errors", JSONB, nullable=False),
        sa.Column("details", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_deployments_status", "deployments", ["status"])
    op.create_index("ix_deployments_created_at", "deployments", ["created_at"])
    op.create_table(
        "approvals",
        sa.Column("plan_id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"])

    # The log is append-only for everyone, owner included: rows can be inserted, never changed.
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )

    for role in ROLES:
        op.execute(
            f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOLOGIN;
                END IF;
                BEGIN
                    EXECUTE 'GRANT {role} TO ' || quote_ident(current_user);
                EXCEPTION WHEN others THEN NULL;  -- already a member, or a superuser
                END;
            END $$;
            """
        )
    op.execute("GRANT SELECT, INSERT ON audit_events TO agentops_auditor")
    op.execute("GRANT USAGE ON SEQUENCE audit_events_seq_seq TO agentops_auditor")
    op.execute("GRANT SELECT, INSERT, UPDATE ON deployments, approvals TO agentops_auditor")
    op.execute("GRANT SELECT ON audit_events, deployments, approvals TO agentops_reader")


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("deployments")
    op.execute("DROP TABLE audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
