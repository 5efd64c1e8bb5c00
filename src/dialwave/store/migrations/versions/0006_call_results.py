"""call_results: what the agent runtime reports about a call

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "call_results",
        sa.Column(
            "call_id",
            sa.String(40),
            sa.ForeignKey("calls.id", ondelete="CASCADE", name="fk_call_results_call_id_calls"),
            nullable=False,
        ),
        sa.Column("organization_id", sa.String(40), nullable=False),
        sa.Column("to_number", sa.String(20), nullable=False),
        sa.Column("conversion", sa.Boolean(), nullable=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("transcript_url", sa.String(2048), nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("callback_at", TS, nullable=True),
        sa.Column("data", JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_call_results"),
    )
    op.create_index("ix_call_results_org_number", "call_results", ["organization_id", "to_number", "created_at"])


def downgrade() -> None:
    op.drop_table("call_results")
