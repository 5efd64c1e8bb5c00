"""calls(campaign_id, started_at): a campaign's recent attempts, for its live pace and per-minute chart

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_calls_campaign_started", "calls", ["campaign_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_campaign_started", table_name="calls")
