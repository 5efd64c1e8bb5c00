"""consents: a number's consent to be called (scope, source, evidence, expiry, revocation)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "organization_id", sa.String(40), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("phone_number", sa.String(20), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("captured_at", TS, nullable=False),
        sa.Column("evidence", sa.Text, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_channel", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_consents_org_phone", "consents", ["organization_id", "phone_number"])


def downgrade() -> None:
    op.drop_index("ix_consents_org_phone", table_name="consents")
    op.drop_table("consents")
