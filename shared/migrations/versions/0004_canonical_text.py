"""Each new row keeps the exact JSON its producer signed (and the chain hashes) beside the JSONB:
`audit verify` hashes that text as stored instead of re-encoding every event (JSONB keeps neither
key order nor spelling), and checks in the database that the JSONB says the same. NULL on rows
written before this migration; those verify as before.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # ADD COLUMN without a default rewrites no row, so the append-only trigger never fires.
    op.add_column("audit_events", sa.Column("canonical", sa.Text))


def downgrade() -> None:
    op.drop_column("audit_events", "canonical")
