"""Review items carry the quality gate's verdict and ood score (NULL for items queued before the gate).

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # adding a column is not an UPDATE: the append-only triggers on review_items stay as they are
    op.add_column("review_items", sa.Column("quality", sa.String(32), nullable=True))
    op.add_column("review_items", sa.Column("ood", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("ood")
        batch.drop_column("quality")
