"""The teaching quiz tables, on the review store's ``Base`` (migration ``0002_quizzes``).

A quiz keeps its ordered tiles with their labels and the model's probability, so that a student's page needs
nothing from the teacher's process: only the dataset id of each tile, to load its pixels. Students join under
a display name with a random key (only its hash is stored), so a reload continues and nobody else can answer
under that name. Answers are unique per (quiz, student, position): a double click records one answer.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.schema import Base, utcnow

SOURCE_KINDS = ("dataset", "examples")


class Quiz(Base):
    """A quiz: where its tiles come from, how they were chosen, and the model that scored them."""

    __tablename__ = "quizzes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # what students type
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    creator: Mapped[str] = mapped_column(String(256))
    teacher_key_sha256: Mapped[str] = mapped_column(String(64))  # opens the class view (it shows the truth)
    source_kind: Mapped[str] = mapped_column(String(16))  # one of SOURCE_KINDS
    source_root: Mapped[str] = mapped_column(String(1024))  # the labelled split the tiles are read from
    description: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer)
    balance: Mapped[float] = mapped_column(Float)  # fraction of tumour tiles asked for
    hard: Mapped[bool] = mapped_column(Boolean)  # tiles the model got wrong or was unsure about, first
    seed: Mapped[int] = mapped_column(Integer)
    model_sha256: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)  # the model's operating threshold when the quiz was made

    __table_args__ = (
        CheckConstraint("source_kind IN ('dataset', 'examples')", name="source_kind"),
        CheckConstraint("size > 0", name="size"),
        CheckConstraint("balance >= 0 AND balance <= 1", name="balance"),
    )


class QuizTile(Base):
    """Tile ``position`` (0-based) of a quiz: its dataset id, ground truth and the model's P(tumour)."""

    __tablename__ = "quiz_tiles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id"))
    position: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[str] = mapped_column(String(256))
    label: Mapped[int] = mapped_column(Integer)
    p: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("quiz_id", "position", name="uq_quiz_tiles_quiz_position"),
        CheckConstraint("label IN (0, 1)", name="label"),
    )


class QuizStudent(Base):
    """A display name taken in a quiz, with the hash of the key that lets its owner continue."""

    __tablename__ = "quiz_students"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id"))
    name: Mapped[str] = mapped_column(String(64))
    key_sha256: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("quiz_id", "name", name="uq_quiz_students_quiz_name"),)


class QuizAnswer(Base):
    """One student's reading of one quiz tile: tumour (1) or not (0), with a confidence from 1 to 5."""

    __tablename__ = "quiz_answers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id"))
    student: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    answer: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    seconds: Mapped[float | None] = mapped_column(Float)  # from the tile being shown to the answer

    __table_args__ = (
        UniqueConstraint("quiz_id", "student", "position", name="uq_quiz_answers_quiz_student_position"),
        CheckConstraint("answer IN (0, 1)", name="answer"),
        CheckConstraint("confidence BETWEEN 1 AND 5", name="confidence"),
    )


class QuizLock(Base):
    """The moment a teacher closed a quiz to new names (migration ``0005_quiz_locks``): students who joined
    before continue, a name nobody joined under is refused."""

    __tablename__ = "quiz_locks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id"), unique=True)
    locked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

