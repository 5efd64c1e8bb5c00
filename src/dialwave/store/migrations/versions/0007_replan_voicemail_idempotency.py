"""leads.earliest_at (the retry policy's earliest instant, apart from window arithmetic),
campaigns.replan_from (waiting leads to bring forward after an edit),
calls.voicemail_left, idempotency keys reserved before the request runs

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replan_from", TS, nullable=True))
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("earliest_at", TS, nullable=True))
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voicemail_left", sa.Boolean, nullable=True))
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column("status_code", existing_type=sa.Integer, nullable=True)
        batch_op.alter_column("response_body", existing_type=sa.Text, nullable=True)
        batch_op.add_column(sa.Column("response_headers", JSON, nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_keys WHERE status_code IS NULL")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("response_headers")
        batch_op.alter_column("response_body", existing_type=sa.Text, nullable=False)
        batch_op.alter_column("status_code", existing_type=sa.Integer, nullable=False)
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("voicemail_left")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("earliest_at")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("replan_from")
