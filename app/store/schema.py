"""The review store's tables: review items (a scored tile and where it came from) and reviews.

Both tables are append-only (the migration adds triggers that refuse UPDATE and DELETE): a correction is a
new review whose ``supersedes_id`` names the one it replaces. Other parts of the app add their tables to
the same ``Base`` and migrate them with revisions after "0001".
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, MetaData,
                        String, Text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SOURCES = ("upload", "dataset", "slide")
DECISIONS = ("agree", "disagree", "unsure")
MODEL_DECISIONS = ("tumour", "normal")

# Named constraints, so later migrations can refer to them on every backend.
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s",
          "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Item(Base):
    """A tile scored by a model that a reviewer can look at; ``key`` identifies it across sessions."""

    __tablename__ = "review_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of source identity + pixels + model
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(16))  # one of SOURCES
    name: Mapped[str] = mapped_column(String(512))  # what the pages show: file name, tile id, slide @ x, y
    upload_name: Mapped[str | None] = mapped_column(String(512))
    dataset_root: Mapped[str | None] = mapped_column(String(1024))
    dataset_id: Mapped[str | None] = mapped_column(String(256))
    slide: Mapped[str | None] = mapped_column(String(1024))
    x: Mapped[int | None] = mapped_column(Integer)  # level-0 pixels, origin top-left
    y: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    pixel_sha256: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    p: Mapped[float] = mapped_column(Float)
    spread: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    model_decision: Mapped[str] = mapped_column(String(8))
    needs_review: Mapped[bool] = mapped_column(Boolean)
    label: Mapped[int | None] = mapped_column(Integer)  # ground truth (0/1) where known
    tile_png: Mapped[bytes | None] = mapped_column(LargeBinary)  # the pixels, so the queue can show them
    quality: Mapped[str | None] = mapped_column(String(32))  # "ok", or why the model did not assess it
    ood: Mapped[float | None] = mapped_column(Float)  # distance from the training tiles

    __table_args__ = (
        CheckConstraint("source IN ('upload', 'dataset', 'slide')", name="source"),
        CheckConstraint("model_decision IN ('tumour', 'normal')", name="model_decision"),
        CheckConstraint("label IS NULL OR label IN (0, 1)", name="label"),
        Index("ix_review_items_source_created", "source", "created_at"),
    )


class Review(Base):
    """One reviewer's decision on one item, with what they saw (the audit CSV's columns)."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reviewer: Mapped[str] = mapped_column(String(256))
    reviewer_verified: Mapped[bool] = mapped_column(Boolean)  # signed in through the OIDC provider
    reviewer_subject: Mapped[str | None] = mapped_column(String(256))  # the provider's stable id
    decision: Mapped[str] = mapped_column(String(8))  # agree / disagree / unsure with the model decision
    comment: Mapped[str] = mapped_column(Text, default="")
    # what the reviewer saw when deciding (the detail view scores with 8-view TTA)
    pixel_sha256: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    p: Mapped[float] = mapped_column(Float)
    spread: Mapped[float] = mapped_column(Float)
    model_decision: Mapped[str] = mapped_column(String(8))
    scorer: Mapped[str | None] = mapped_column(String(16))  # the engine that gave p; None when not known
    # unique: a review is superseded at most once, so corrections form a chain with one current review
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"), unique=True)
    import_key: Mapped[str | None] = mapped_column(String(64), unique=True)  # sha256 of an imported CSV row

    __table_args__ = (
        CheckConstraint("decision IN ('agree', 'disagree', 'unsure')", name="decision"),
        CheckConstraint("model_decision IN ('tumour', 'normal')", name="model_decision"),
        CheckConstraint("length(reviewer) > 0", name="reviewer"),
        Index("ix_reviews_reviewer_item", "reviewer", "item_id"),
    )
