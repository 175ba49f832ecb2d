"""Teaching quizzes in the review store: create a quiz, join it, record answers, read results.

Pages call these functions and never write SQL. What a student may read is split from what a teacher may
read: ``get_quiz`` and ``answers`` carry no ground truth and no model score; ``reveal`` gives them for one
tile only once that student's answer to it is stored; ``class_frame`` and ``quiz_key`` need the teacher key.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.store import db
from app.store.items import StoreError
from app.store.quiz_schema import SOURCE_KINDS, Quiz, QuizAnswer, QuizLock, QuizStudent, QuizTile
from app.store.schema import utcnow

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 6
MAX_NAME = 64
MAX_SIZE = 200


class QuizRefused(StoreError):
    """A quiz request the store refuses; the message says why, for the student or teacher."""


@dataclass(frozen=True)
class TileIn:
    """One tile of a new quiz, in quiz order."""

    dataset_id: str
    label: int
    p: float


@dataclass(frozen=True)
class QuizSpec:
    """How a quiz was made: its source, size, class balance, hard selection, seed and the scoring model."""

    source_kind: str
    source_root: str
    description: str
    size: int
    balance: float
    hard: bool
    seed: int
    model_sha256: str
    threshold: float
    creator: str = ""


@dataclass(frozen=True)
class QuizInfo:
    """What a student's page may know of a quiz: no labels, no scores."""

    code: str
    created_at: dt.datetime
    creator: str
    source_kind: str
    source_root: str
    description: str
    balance: float
    hard: bool
    seed: int
    model_sha256: str
    threshold: float
    tile_ids: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.tile_ids)


@dataclass(frozen=True)
class Answer:
    position: int
    answer: int  # 1 tumour, 0 no tumour
    confidence: int
    created_at: dt.datetime
    seconds: float | None


@dataclass(frozen=True)
class Revealed:
    """An answered tile with its truth and the model's stored P(tumour)."""

    position: int
    dataset_id: str
    label: int
    p: float
    answer: int
    confidence: int


def normalise_code(code: str) -> str:
    return "".join(str(code or "").split()).upper()[:16]


def clean_name(name: str) -> str:
    return " ".join(str(name or "").replace("\x00", "").split())[:MAX_NAME]


def _sha(key: str) -> str:
    return hashlib.sha256(str(key or "").encode()).hexdigest()


def _same(key: str, digest: str) -> bool:
    return hmac.compare_digest(_sha(key), digest)


def _quiz(s: Session, code: str) -> Quiz:
    quiz = s.scalar(select(Quiz).where(Quiz.code == normalise_code(code)))
    if quiz is None:
        raise QuizRefused(f"There is no quiz with the code {normalise_code(code) or '(empty)'}.")
    return quiz


def _teacher(s: Session, code: str, key: str) -> Quiz:
    quiz = _quiz(s, code)
    if not _same(key, quiz.teacher_key_sha256):
        raise QuizRefused(f"That is not the teacher key of quiz {quiz.code}.")
    return quiz


def _check(spec: QuizSpec, tiles: list[TileIn]) -> None:
    if spec.source_kind not in SOURCE_KINDS:
        raise QuizRefused(f"source_kind must be one of {', '.join(SOURCE_KINDS)}")
    if not 0 < len(tiles) <= MAX_SIZE:
        raise QuizRefused(f"A quiz holds 1 to {MAX_SIZE} tiles, not {len(tiles)}.")
    if len({t.dataset_id for t in tiles}) != len(tiles):
        raise QuizRefused("A quiz cannot hold the same tile twice.")
    if any(t.label not in (0, 1) or not math.isfinite(float(t.p)) for t in tiles):
        raise QuizRefused("Every quiz tile needs a label 0 or 1 and a finite model probability.")
    if not 0.0 <= spec.balance <= 1.0:
        raise QuizRefused("The class balance is a fraction of tumour tiles between 0 and 1.")


def create_quiz(spec: QuizSpec, tiles: list[TileIn], *, url: str | None = None) -> tuple[str, str]:
    """Store a quiz with its ordered tiles; returns (code, teacher key). The key is shown once, never stored."""
    _check(spec, tiles)
    key = secrets.token_urlsafe(9)
    for _ in range(20):  # 32^6 codes: a clash is rare, and the unique constraint catches it
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with db.session(url, write=True) as s:
                quiz = Quiz(code=code, created_at=utcnow(), creator=clean_name(spec.creator) or "teacher",
                            teacher_key_sha256=_sha(key), source_kind=spec.source_kind,
                            source_root=spec.source_root, description=spec.description[:512],
                            size=len(tiles), balance=float(spec.balance), hard=bool(spec.hard),
                            seed=int(spec.seed), model_sha256=spec.model_sha256, threshold=float(spec.threshold))
                s.add(quiz)
                s.flush()
                s.add_all(QuizTile(quiz_id=quiz.id, position=i, dataset_id=str(t.dataset_id), label=int(t.label),
                                   p=float(t.p)) for i, t in enumerate(tiles))
            return code, key
        except IntegrityError as exc:
            if "code" not in str(exc.orig).lower():
                raise
    raise QuizRefused("No free quiz code was found; try again.")


def get_quiz(code: str, *, url: str | None = None) -> QuizInfo | None:
    """The quiz as a student's page sees it (tile ids in order, no truth), or None."""
    with db.session(url) as s:
        quiz = s.scalar(select(Quiz).where(Quiz.code == normalise_code(code)))
        if quiz is None:
            return None
        ids = s.scalars(select(QuizTile.dataset_id).where(QuizTile.quiz_id == quiz.id)
                        .order_by(QuizTile.position)).all()
        return QuizInfo(quiz.code, quiz.created_at, quiz.creator, quiz.source_kind, quiz.source_root,
                        quiz.description, quiz.balance, quiz.hard, quiz.seed, quiz.model_sha256, quiz.threshold,
                        tuple(ids))


def teacher_ok(code: str, key: str, *, url: str | None = None) -> bool:
    """Whether ``key`` opens the class view of quiz ``code``."""
    with db.session(url) as s:
        quiz = s.scalar(select(Quiz).where(Quiz.code == normalise_code(code)))
        return quiz is not None and _same(key, quiz.teacher_key_sha256)


def join(code: str, name: str, key: str | None = None, *, url: str | None = None) -> str:
    """Join quiz ``code`` as ``name``; returns the student key (a new one, or ``key`` when it is theirs).

    A name already taken in the quiz is refused unless ``key`` is its key: that is how a reload continues.
    """
    name = clean_name(name)
    if not name:
        raise QuizRefused("Enter a display name to take the quiz.")
    try:
        with db.session(url, write=True) as s:
            quiz = _quiz(s, code)
            taken = s.scalar(select(QuizStudent).where(QuizStudent.quiz_id == quiz.id, QuizStudent.name == name))
            if taken is not None:
                if key and _same(key, taken.key_sha256):
                    return key
                raise QuizRefused(f"The name {name!r} is already taken in this quiz. If it is yours, open the "
                                  "address your quiz page had (it holds your key and continues where you were); "
                                  "otherwise choose another name.")
            if s.scalar(select(QuizLock.id).where(QuizLock.quiz_id == quiz.id)) is not None:
                raise QuizRefused("This quiz is closed to new names. If you joined it before, open the address "
                                  "your quiz page had (it holds your key); otherwise ask your teacher.")
            key = secrets.token_urlsafe(9)
            s.add(QuizStudent(quiz_id=quiz.id, name=name, key_sha256=_sha(key), joined_at=utcnow()))
        return key
    except IntegrityError:  # someone took the name a moment before
        raise QuizRefused(f"The name {name!r} is already taken in this quiz; choose another.") from None


def lock(code: str, teacher_key: str, *, url: str | None = None) -> dt.datetime:
    """Close quiz ``code`` to new names (teacher only); returns when it was closed (the first time)."""
    with db.session(url, write=True) as s:
        quiz = _teacher(s, code, teacher_key)
        if s.scalar(select(QuizLock.id).where(QuizLock.quiz_id == quiz.id)) is None:
            s.add(QuizLock(quiz_id=quiz.id, locked_at=utcnow()))
            s.flush()
        return s.scalar(select(QuizLock.locked_at).where(QuizLock.quiz_id == quiz.id))


def locked_at(code: str, *, url: str | None = None) -> dt.datetime | None:
    """When quiz ``code`` was closed to new names, or None while it is open."""
    with db.session(url) as s:
        quiz = _quiz(s, code)
        return s.scalar(select(QuizLock.locked_at).where(QuizLock.quiz_id == quiz.id))


def _student(s: Session, quiz: Quiz, name: str, key: str) -> str:
    name = clean_name(name)
    row = s.scalar(select(QuizStudent).where(QuizStudent.quiz_id == quiz.id, QuizStudent.name == name))
    if row is None or not _same(key, row.key_sha256):
        raise QuizRefused("This browser has not joined the quiz under that name; join it again.")
    return name


def answers(code: str, student: str, *, url: str | None = None) -> dict[int, Answer]:
    """The student's stored answers by position (their own readings only: no truth, no scores)."""
    with db.session(url) as s:
        quiz = _quiz(s, code)
        rows = s.scalars(select(QuizAnswer).where(QuizAnswer.quiz_id == quiz.id,
                                                  QuizAnswer.student == clean_name(student))).all()
        return {r.position: Answer(r.position, r.answer, r.confidence, r.created_at, r.seconds) for r in rows}


def _insert(s: Session):
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(s.get_bind().dialect.name)


def record_answer(code: str, student: str, key: str, position: int, answer: int, confidence: int,
                  seconds: float | None = None, *, url: str | None = None) -> Answer:
    """Store the student's answer to tile ``position``; the first answer stays (a double click is a no-op).

    Returns the stored answer, which is the earlier one when the tile was already answered.
    """
    if answer not in (0, 1):
        raise QuizRefused("Answer tumour or no tumour.")
    if confidence not in (1, 2, 3, 4, 5):
        raise QuizRefused("The confidence is a whole number from 1 to 5.")
    with db.session(url, write=True) as s:
        quiz = _quiz(s, code)
        name = _student(s, quiz, student, key)
        if not 0 <= int(position) < quiz.size:
            raise QuizRefused(f"Quiz {quiz.code} has no tile {int(position) + 1}.")
        row = dict(quiz_id=quiz.id, student=name, position=int(position), answer=int(answer),
                   confidence=int(confidence), created_at=utcnow(),
                   seconds=None if seconds is None else max(0.0, float(seconds)))
        insert = _insert(s)
        where = (QuizAnswer.quiz_id == quiz.id, QuizAnswer.student == name, QuizAnswer.position == int(position))
        if insert is not None:
            s.execute(insert(QuizAnswer).values(**row).on_conflict_do_nothing(
                index_elements=["quiz_id", "student", "position"]))
        elif s.scalar(select(QuizAnswer.id).where(*where)) is None:
            s.add(QuizAnswer(**row))
        s.flush()
        r = s.scalar(select(QuizAnswer).where(*where))
        return Answer(r.position, r.answer, r.confidence, r.created_at, r.seconds)


def _revealed_query(quiz_id: int, student: str):
    # The join on the student's answer is the guard: a tile without one returns nothing.
    return (select(QuizTile.position, QuizTile.dataset_id, QuizTile.label, QuizTile.p, QuizAnswer.answer,
                   QuizAnswer.confidence)
            .join(QuizAnswer, (QuizAnswer.quiz_id == QuizTile.quiz_id) & (QuizAnswer.position == QuizTile.position))
            .where(QuizTile.quiz_id == quiz_id, QuizAnswer.student == clean_name(student))
            .order_by(QuizTile.position))


def reveal(code: str, student: str, position: int, *, url: str | None = None) -> Revealed | None:
    """Truth and stored model P(tumour) of one tile, only if ``student`` has answered it; else None."""
    with db.session(url) as s:
        quiz = _quiz(s, code)
        row = s.execute(_revealed_query(quiz.id, student).where(QuizTile.position == int(position))).first()
        return None if row is None else Revealed(*row)


def revealed(code: str, student: str, *, url: str | None = None) -> list[Revealed]:
    """Every tile ``student`` has answered, with its truth, in quiz order."""
    with db.session(url) as s:
        quiz = _quiz(s, code)
        return [Revealed(*row) for row in s.execute(_revealed_query(quiz.id, student)).all()]


def quiz_key(code: str, teacher_key: str, *, url: str | None = None) -> pd.DataFrame:
    """The quiz's tiles with truth and stored P(tumour) (teacher only): position, dataset_id, label, p."""
    with db.session(url) as s:
        quiz = _teacher(s, code, teacher_key)
        rows = s.execute(select(QuizTile.position, QuizTile.dataset_id, QuizTile.label, QuizTile.p)
                         .where(QuizTile.quiz_id == quiz.id).order_by(QuizTile.position)).all()
    return pd.DataFrame(rows, columns=["position", "dataset_id", "label", "p"])


CLASS_COLUMNS = ["student", "position", "dataset_id", "label", "p", "answer", "confidence", "seconds",
                 "answered_at"]


def class_frame(code: str, teacher_key: str, *, url: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(every answer of the class with its tile's truth, the students who joined) — teacher only."""
    with db.session(url) as s:
        quiz = _teacher(s, code, teacher_key)
        rows = s.execute(select(QuizAnswer.student, QuizAnswer.position, QuizTile.dataset_id, QuizTile.label,
                                QuizTile.p, QuizAnswer.answer, QuizAnswer.confidence, QuizAnswer.seconds,
                                QuizAnswer.created_at)
                         .join(QuizTile, (QuizTile.quiz_id == QuizAnswer.quiz_id)
                               & (QuizTile.position == QuizAnswer.position))
                         .where(QuizAnswer.quiz_id == quiz.id)
                         .order_by(QuizAnswer.student, QuizAnswer.position)).all()
        names = s.scalars(select(QuizStudent.name).where(QuizStudent.quiz_id == quiz.id)
                          .order_by(QuizStudent.joined_at, QuizStudent.id)).all()
    return pd.DataFrame(rows, columns=CLASS_COLUMNS), list(names)
