"""A quiz can be closed to new names: a row in ``quiz_locks`` (append-only, like the answers).

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quiz_locks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quiz_id", sa.Integer, sa.ForeignKey("quizzes.id", name="fk_quiz_locks_quiz_id"), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("quiz_id", name="uq_quiz_locks_quiz_id"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE TRIGGER quiz_locks_append_only BEFORE UPDATE OR DELETE ON quiz_locks "
                   "FOR EACH ROW EXECUTE FUNCTION pathreview_append_only()")
        op.execute("CREATE TRIGGER quiz_locks_no_truncate BEFORE TRUNCATE ON quiz_locks "
                   "FOR EACH STATEMENT EXECUTE FUNCTION pathreview_append_only()")
    elif dialect == "sqlite":
        for what in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER quiz_locks_no_{what.lower()} BEFORE {what} ON quiz_locks BEGIN "
                       f"SELECT RAISE(ABORT, 'PathReview: {what} on quiz_locks refused: the table is "
                       "append-only'); END")
        op.execute("CREATE TRIGGER quiz_locks_no_replace BEFORE INSERT ON quiz_locks WHEN EXISTS (SELECT 1 FROM "
                   "quiz_locks WHERE id = NEW.id OR quiz_id = NEW.quiz_id) BEGIN SELECT RAISE(IGNORE); END")


def downgrade() -> None:
    op.drop_table("quiz_locks")  # its triggers go with it
