"""Close the ways around the append-only triggers, and make quiz answers append-only too.

SQLite's ``INSERT OR REPLACE`` (and ``REPLACE INTO``) deletes the row it conflicts with without firing DELETE
triggers, so it rewrote a review in place; PostgreSQL's ``TRUNCATE`` fires no row triggers, so it emptied the
tables. SQLite now refuses (reviews) or ignores (items, answers: where insert-or-ignore is the intended
behaviour) any insert that would replace a row; PostgreSQL refuses TRUNCATE. Quiz answers get the same UPDATE
and DELETE triggers as reviews: a student's first answer is the one that counts.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("review_items", "reviews", "quiz_answers")
# What an insert may not collide with: the primary key and each unique constraint. On a collision the row is
# refused (ABORT, so the caller learns of it: record_review reports a superseded review from it) or ignored.
UNIQUE = {
    "review_items": ("IGNORE", "id = NEW.id OR key = NEW.key"),
    "reviews": ("ABORT", "id = NEW.id OR supersedes_id = NEW.supersedes_id OR import_key = NEW.import_key"),
    "quiz_answers": ("IGNORE", "id = NEW.id OR (quiz_id = NEW.quiz_id AND student = NEW.student "
                               "AND position = NEW.position)"),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE TRIGGER quiz_answers_append_only BEFORE UPDATE OR DELETE ON quiz_answers "
                   "FOR EACH ROW EXECUTE FUNCTION pathreview_append_only()")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION pathreview_append_only()")
    elif dialect == "sqlite":
        for what in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER quiz_answers_no_{what.lower()} BEFORE {what} ON quiz_answers BEGIN "
                       f"SELECT RAISE(ABORT, 'PathReview: {what} on quiz_answers refused: the table is "
                       "append-only'); END")
        for table, (action, clash) in UNIQUE.items():
            raise_ = ("RAISE(IGNORE)" if action == "IGNORE" else
                      f"RAISE(ABORT, 'PathReview: an insert into {table} that would replace a row (its id, "
                      f"supersedes_id or import_key is taken) refused: the table is append-only')")
            op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {clash}) BEGIN SELECT {raise_}; END")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS quiz_answers_append_only ON quiz_answers")
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    elif dialect == "sqlite":
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS quiz_answers_no_{what}")
        for table in UNIQUE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
