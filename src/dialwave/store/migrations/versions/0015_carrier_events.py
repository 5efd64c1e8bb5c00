"""carrier_events: carriers' webhooks received by a process that does not hold the call

With several processes on PostgreSQL, a carrier's webhook (Twilio's status callback, Telnyx's and
LiveKit's events, Vapi's and Retell's) lands on an API process, while the call is held by the
`dialwave worker` that placed it. The API process stores the verified event here and notifies
(LISTEN/NOTIFY); the worker holding the call takes it and applies it as if it had received it.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_carrier_events_call_id", "carrier_events", ["call_id"])
    op.create_index("ix_carrier_events_created_at", "carrier_events", ["created_at"])


def downgrade() -> None:
    op.drop_table("carrier_events")
