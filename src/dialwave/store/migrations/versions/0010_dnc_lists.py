"""dnc_lists and dnc_list_numbers: named do-not-call lists imported in bulk (a national registry)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dnc_lists",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "organization_id", sa.String(40), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("max_age_days", sa.Integer, nullable=True),
        sa.Column("refreshed_at", TS, nullable=True),
        sa.Column("numbers_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("organization_id", "name"),
    )
    op.create_table(
        "dnc_list_numbers",
        sa.Column("list_id", sa.String(40), sa.ForeignKey("dnc_lists.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("phone_number", sa.String(20), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("dnc_list_numbers")
    op.drop_table("dnc_lists")
