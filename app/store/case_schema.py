"""The case tables, on the review store's ``Base`` (migration ``0006_cases``): slides scored by a batch run
(``scored_slides``) and pathologists' slide-level sign-outs (``slide_signouts``). Both are append-only: a slide
scored again is a new row (the worklist shows the latest per slide file and model), and a second sign-out of
a case is a new row too (the latest one is the case's status)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, CheckConstraint, DateTime, Float, ForeignKey, Integer, LargeBinary, String,
                        Text)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.schema import Base, utcnow

CALLS = ("metastasis", "no_metastasis", "defer")
MODEL_CALLS = ("metastasis", "no_metastasis")


class ScoredSlide(Base):
    """One slide as a batch run scored it: its answer, its tiles (gzipped CSV) and its summary."""

    __tablename__ = "scored_slides"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of slide sha256 + model + settings
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    slide: Mapped[str] = mapped_column(String(512))  # the file name
    path: Mapped[str] = mapped_column(String(2048))  # where the batch read it
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str | None] = mapped_column(String(256))
    model_sha256: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str | None] = mapped_column(String(16))
    slide_score: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str | None] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float)
    tiles_scored: Mapped[int] = mapped_column(Integer)
    tiles_flagged: Mapped[int | None] = mapped_column(Integer)
    truth: Mapped[int | None] = mapped_column(Integer)  # 1: holds a metastasis, 0: not, where known
    summary_json: Mapped[str] = mapped_column(Text)
    tiles_csv_gz: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        CheckConstraint("decision IS NULL OR decision IN ('metastasis', 'no_metastasis')", name="decision"),
        CheckConstraint("truth IS NULL OR truth IN (0, 1)", name="truth"),
    )


class SlideSignOut(Base):
    """A pathologist's slide-level call on a scored slide, with what the model said when they made it."""

    __tablename__ = "slide_signouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("scored_slides.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reviewer: Mapped[str] = mapped_column(String(256))
    reviewer_verified: Mapped[bool] = mapped_column(Boolean)
    reviewer_subject: Mapped[str | None] = mapped_column(String(256))
    call: Mapped[str] = mapped_column(String(16))  # one of CALLS
    comment: Mapped[str] = mapped_column(Text, default="")
    slide_score: Mapped[float | None] = mapped_column(Float)  # what the worklist showed
    model_decision: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint("call IN ('metastasis', 'no_metastasis', 'defer')", name="call"),
        CheckConstraint("length(reviewer) > 0", name="reviewer"),
    )
