"""Teaching quizzes: quizzes, their ordered tiles, students and answers.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quizzes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("creator", sa.String(256), nullable=False),
        sa.Column("teacher_key_sha256", sa.String(64), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_root", sa.String(1024), nullable=False),
        sa.Column("description", sa.String(512), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("balance", sa.Float, nullable=False),
        sa.Column("hard", sa.Boolean, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.UniqueConstraint("code", name="uq_quizzes_code"),
        sa.CheckConstraint("source_kind IN ('dataset', 'examples')", name="ck_quizzes_source_kind"),
        sa.CheckConstraint("size > 0", name="ck_quizzes_size"),
        sa.CheckConstraint("balance >= 0 AND balance <= 1", name="ck_quizzes_balance"),
    )
    op.create_table(
        "quiz_tiles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quiz_id", sa.Integer, sa.ForeignKey("quizzes.id", name="fk_quiz_tiles_quiz_id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("dataset_id", sa.String(256), nullable=False),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("p", sa.Float, nullable=False),
        sa.UniqueConstraint("quiz_id", "position", name="uq_quiz_tiles_quiz_position"),
        sa.CheckConstraint("label IN (0, 1)", name="ck_quiz_tiles_label"),
    )
    op.create_table(
        "quiz_students",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quiz_id", sa.Integer, sa.ForeignKey("quizzes.id", name="fk_quiz_students_quiz_id"),
                  nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("quiz_id", "name", name="uq_quiz_students_quiz_name"),
    )
    op.create_table(
        "quiz_answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("quiz_id", sa.Integer, sa.ForeignKey("quizzes.id", name="fk_quiz_answers_quiz_id"),
                  nullable=False),
        sa.Column("student", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("answer", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float),
        sa.UniqueConstraint("quiz_id", "student", "position", name="uq_quiz_answers_quiz_student_position"),
        sa.CheckConstraint("answer IN (0, 1)", name="ck_quiz_answers_answer"),
        sa.CheckConstraint("confidence BETWEEN 1 AND 5", name="ck_quiz_answers_confidence"),
    )


def downgrade() -> None:
    op.drop_table("quiz_answers")
    op.drop_table("quiz_students")
    op.drop_table("quiz_tiles")
    op.drop_table("quizzes")
