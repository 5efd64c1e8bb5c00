"""engine: lead retry state, call details, dispatch indexes, organization cap

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
DUE = sa.text("status IN ('queued', 'retry_pending')")
LIVE = sa.text("status IN ('pending', 'dialing', 'ringing', 'in_call')")


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("max_concurrency", sa.Integer(), nullable=True))
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("retries", JSON, nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_leads_due",
        "leads",
        ["campaign_id", "next_attempt_at"],
        postgresql_where=DUE,
        sqlite_where=DUE,
    )
    op.create_index("ix_leads_org_phone_status", "leads", ["organization_id", "phone_number", "status"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("caller_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("agent_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=256), nullable=True))
    op.create_index("ix_calls_org_to_started", "calls", ["organization_id", "to_number", "started_at"])
    op.create_index("ix_calls_live", "calls", ["campaign_id"], postgresql_where=LIVE, sqlite_where=LIVE)


def downgrade() -> None:
    op.drop_index("ix_calls_live", "calls")
    op.drop_index("ix_calls_org_to_started", "calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("reason")
        batch.drop_column("agent_version")
        batch.drop_column("caller_id")
    op.drop_index("ix_leads_org_phone_status", "leads")
    op.drop_index("ix_leads_due", "leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("finished_at")
        batch.drop_column("reason")
        batch.drop_column("retries")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("max_concurrency")
