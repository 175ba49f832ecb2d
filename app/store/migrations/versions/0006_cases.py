"""Cases: slides scored by a batch run and slide-level sign-outs, both append-only.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# what an insert may not collide with (SQLite's INSERT OR REPLACE would otherwise rewrite a row)
UNIQUE = {"scored_slides": ("IGNORE", "id = NEW.id OR key = NEW.key"),
          "slide_signouts": ("ABORT", "id = NEW.id")}


def upgrade() -> None:
    op.create_table(
        "scored_slides",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slide", sa.String(512), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("engine", sa.String(16)),
        sa.Column("slide_score", sa.Float),
        sa.Column("decision", sa.String(16)),
        sa.Column("threshold", sa.Float),
        sa.Column("tiles_scored", sa.Integer, nullable=False),
        sa.Column("tiles_flagged", sa.Integer),
        sa.Column("truth", sa.Integer),
        sa.Column("summary_json", sa.Text, nullable=False),
        sa.Column("tiles_csv_gz", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("key", name="uq_scored_slides_key"),
        sa.CheckConstraint("decision IS NULL OR decision IN ('metastasis', 'no_metastasis')",
                           name="ck_scored_slides_decision"),
        sa.CheckConstraint("truth IS NULL OR truth IN (0, 1)", name="ck_scored_slides_truth"),
    )
    op.create_index("ix_scored_slides_sha256", "scored_slides", ["sha256"])
    op.create_table(
        "slide_signouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slide_id", sa.Integer, sa.ForeignKey("scored_slides.id", name="fk_slide_signouts_slide_id"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("reviewer_verified", sa.Boolean, nullable=False),
        sa.Column("reviewer_subject", sa.String(256)),
        sa.Column("call", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("slide_score", sa.Float),
        sa.Column("model_decision", sa.String(16)),
        sa.CheckConstraint("call IN ('metastasis', 'no_metastasis', 'defer')", name="ck_slide_signouts_call"),
        sa.CheckConstraint("length(reviewer) > 0", name="ck_slide_signouts_reviewer"),
    )
    op.create_index("ix_slide_signouts_slide_id", "slide_signouts", ["slide_id"])
    dialect = op.get_bind().dialect.name
    for table, (action, clash) in UNIQUE.items():
        if dialect == "postgresql":
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION pathreview_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION pathreview_append_only()")
        elif dialect == "sqlite":
            for what in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} BEGIN "
                           f"SELECT RAISE(ABORT, 'PathReview: {what} on {table} refused: the table is "
                           "append-only'); END")
            raise_ = ("RAISE(IGNORE)" if action == "IGNORE" else
                      f"RAISE(ABORT, 'PathReview: an insert into {table} that would replace a row refused: "
                      "the table is append-only')")
            op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {clash}) BEGIN SELECT {raise_}; END")


def downgrade() -> None:
    op.drop_table("slide_signouts")  # their triggers go with them
    op.drop_table("scored_slides")
