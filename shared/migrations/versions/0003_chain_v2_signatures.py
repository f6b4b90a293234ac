"""Chain 2: every row names its signer, keeps the producer's signature, and says which chain rule
its hash follows (1: the payload only, rows before this migration; 2: every column).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # ADD COLUMN with a constant default rewrites no row, so the append-only trigger never fires.
    op.add_column("audit_events", sa.Column("signer", sa.String(200)))
    op.add_column("audit_events", sa.Column("signer_key", sa.String(64)))
    op.add_column("audit_events", sa.Column("signature", sa.String(100)))
    op.add_column("audit_events", sa.Column("chain_version", sa.SmallInteger, nullable=False, server_default="1"))
    # Nothing but the grants below: no PUBLIC access to the log or the projections.
    op.execute("REVOKE ALL ON audit_events, deployments, approvals, alembic_version FROM PUBLIC")
    op.execute("GRANT SELECT ON alembic_version TO agentops_reader, agentops_auditor")


def downgrade() -> None:
    for column in ("chain_version", "signature", "signer_key", "signer"):
        op.drop_column("audit_events", column)
