"""dial_slots: one row per call holding concurrency (campaign, organization, caller id) across workers

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dial_slots",
        sa.Column("call_id", sa.String(40), primary_key=True),
        sa.Column("organization_id", sa.String(40), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("caller_id", sa.String(40), nullable=False),
        sa.Column("worker_key", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_dial_slots_organization_id", "dial_slots", ["organization_id"])
    op.create_index("ix_dial_slots_campaign_id", "dial_slots", ["campaign_id"])


def downgrade() -> None:
    op.drop_table("dial_slots")
