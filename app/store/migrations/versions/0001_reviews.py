"""Review items and reviews, both append-only.

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("review_items", "reviews")


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("upload_name", sa.String(512)),
        sa.Column("dataset_root", sa.String(1024)),
        sa.Column("dataset_id", sa.String(256)),
        sa.Column("slide", sa.String(1024)),
        sa.Column("x", sa.Integer),
        sa.Column("y", sa.Integer),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("pixel_sha256", sa.String(64), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("p", sa.Float, nullable=False),
        sa.Column("spread", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("model_decision", sa.String(8), nullable=False),
        sa.Column("needs_review", sa.Boolean, nullable=False),
        sa.Column("label", sa.Integer),
        sa.Column("tile_png", sa.LargeBinary),
        sa.UniqueConstraint("key", name="uq_review_items_key"),
        sa.CheckConstraint("source IN ('upload', 'dataset', 'slide')", name="ck_review_items_source"),
        sa.CheckConstraint("model_decision IN ('tumour', 'normal')", name="ck_review_items_model_decision"),
        sa.CheckConstraint("label IS NULL OR label IN (0, 1)", name="ck_review_items_label"),
    )
    op.create_index("ix_review_items_source_created", "review_items", ["source", "created_at"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id", name="fk_reviews_item_id"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("reviewer_verified", sa.Boolean, nullable=False),
        sa.Column("reviewer_subject", sa.String(256)),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("pixel_sha256", sa.String(64), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("p", sa.Float, nullable=False),
        sa.Column("spread", sa.Float, nullable=False),
        sa.Column("model_decision", sa.String(8), nullable=False),
        sa.Column("supersedes_id", sa.Integer, sa.ForeignKey("reviews.id", name="fk_reviews_supersedes_id")),
        sa.Column("import_key", sa.String(64)),
        sa.UniqueConstraint("supersedes_id", name="uq_reviews_supersedes_id"),
        sa.UniqueConstraint("import_key", name="uq_reviews_import_key"),
        sa.CheckConstraint("decision IN ('agree', 'disagree', 'unsure')", name="ck_reviews_decision"),
        sa.CheckConstraint("model_decision IN ('tumour', 'normal')", name="ck_reviews_model_decision"),
        sa.CheckConstraint("length(reviewer) > 0", name="ck_reviews_reviewer"),
    )
    op.create_index("ix_reviews_item_id", "reviews", ["item_id"])
    op.create_index("ix_reviews_reviewer_item", "reviews", ["reviewer", "item_id"])
    _append_only(op.get_bind().dialect.name)


def _append_only(dialect: str) -> None:
    """Triggers that refuse UPDATE and DELETE, so no code path (or hand-typed SQL) rewrites history."""
    if dialect == "postgresql":
        op.execute("""
            CREATE FUNCTION pathreview_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'PathReview: % on % refused: the table is append-only', TG_OP, TG_TABLE_NAME;
            END $$""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION pathreview_append_only()")
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for what in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} BEGIN "
                           f"SELECT RAISE(ABORT, 'PathReview: {what} on {table} refused: the table is "
                           "append-only'); END")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        elif dialect == "sqlite":
            for what in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{what}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pathreview_append_only()")
    op.drop_table("reviews")
    op.drop_table("review_items")
