"""Where a student is, in the page address: quiz code, display name, student key and the tile on screen.

A light module of its own: the app's entry point reads it on every run to show a student the quiz alone.
"""
from __future__ import annotations

from typing import Mapping

QP_QUIZ, QP_STUDENT, QP_KEY = "quiz", "student", "key"
QP_AT = "at"  # the tile on screen (1-based), so a reload shows the same tile


def in_quiz(params: Mapping[str, str]) -> bool:
    """True when the address names a student in a quiz: that session sees the quiz and nothing else."""
    return all(str(params.get(k, "")).strip() for k in (QP_QUIZ, QP_STUDENT, QP_KEY))
