"""calls.agent_connected_at, calls.abandoned, calls.decision: abandonment (the agent connected too late
after a person answered) and the per-dial audit trail; indexes for the campaign's 30-day abandonment
rate and for the audit export's pages

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ANSWERED = sa.text("answered_at IS NOT NULL")
SKIPPED = sa.text("status = 'skipped'")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("agent_connected_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("abandoned", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("decision", JSON, nullable=True))
    op.create_index(
        "ix_calls_campaign_answered",
        "calls",
        ["campaign_id", "answered_at", "outcome", "abandoned"],
        postgresql_where=ANSWERED,
        sqlite_where=ANSWERED,
    )
    op.create_index("ix_calls_campaign_id", "calls", ["campaign_id", "id"])
    op.create_index("ix_leads_skipped", "leads", ["campaign_id", "id"], postgresql_where=SKIPPED, sqlite_where=SKIPPED)


def downgrade() -> None:
    op.drop_index("ix_leads_skipped", table_name="leads")
    op.drop_index("ix_calls_campaign_id", table_name="calls")
    op.drop_index("ix_calls_campaign_answered", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("decision")
        batch.drop_column("abandoned")
        batch.drop_column("agent_connected_at")
