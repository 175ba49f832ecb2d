"""Reviews record which runtime gave the score the reviewer saw (the int8 copy, model.onnx or Keras).

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: reviews recorded before this revision, and imported audit logs, do not say
    op.add_column("reviews", sa.Column("scorer", sa.String(16)))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite >= 3.35 has one): a batch copy of the table would lose its append-only triggers
    op.drop_column("reviews", "scorer")
