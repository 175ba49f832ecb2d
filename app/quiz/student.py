"""The student's side of a quiz: one question, the feedback after it, and the end-of-quiz review.

Nothing here reads a tile's truth or the model's score before the student's answer to that tile is stored:
the question shows pixels only; ``feedback`` reads the truth through ``quizzes.reveal``, which returns nothing
for an unanswered tile, and only then asks the model. No widget or session value holds a label or a score.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np

import pandas as pd
import streamlit as st

from app.display.text import md
from app.quiz import address, feedback, reader_metrics
from app.runtime import state
from app.store import quizzes

CHOICES = {"tumour": 1, "no tumour": 0}
NAMES = {1: "tumour", 0: "no tumour"}
AT = "quiz-at"  # session: the position on screen
QP_AT = address.QP_AT
FLASH = "quiz-flash"


def answer_key(pos: int) -> str:
    return f"quiz-answer-{pos}"


def confidence_key(pos: int) -> str:
    return f"quiz-confidence-{pos}"


def shown_key(code: str, pos: int) -> str:
    return f"quiz-shown-{code}-{pos}"


def order(code: str, name: str, size: int) -> list[int]:
    """The quiz positions in the order this student meets them: a shuffle of their own, the same on every
    visit (seeded by quiz and name), so that a second name does not show the first tiles of the first."""
    seed = int.from_bytes(hashlib.sha256(f"{code}\n{name}".encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng(seed).permutation(size).tolist()


def first_open(size: int, answered: set[int], after: int = -1) -> int:
    """The first unanswered position after ``after`` (wrapping round), else ``size`` (all done: the review)."""
    for pos in list(range(after + 1, size)) + list(range(0, after + 1)):
        if pos not in answered:
            return pos
    return size


def _valid(at, size: int, answered: set[int]) -> bool:
    return isinstance(at, int) and 0 <= at <= size and (at < size or len(answered) == size)


def position(size: int, answered: set[int]) -> int:
    """The step (of the student's order) to show: the session's, else the page address's (a reload), else the first
    unanswered one.

    The address follows it, so a reload shows the same tile: its question, or its feedback once answered.
    """
    at = st.session_state.get(AT)
    if not _valid(at, size, answered):
        raw = st.query_params.get(QP_AT, "")
        at = int(raw) - 1 if raw.isdigit() else None
        if not _valid(at, size, answered):
            at = first_open(size, answered)
    st.session_state[AT] = at
    if st.query_params.get(QP_AT) != str(at + 1):
        st.query_params[QP_AT] = str(at + 1)
    return at


def _submit(code: str, name: str, key: str, pos: int) -> None:
    """Form callback: store the answer before the page runs, so that run already shows the feedback."""
    choice = st.session_state.get(answer_key(pos))
    if choice not in CHOICES:
        st.session_state[FLASH] = "Choose tumour or no tumour before submitting."
        return
    shown = st.session_state.get(shown_key(code, pos))
    confidence = int(st.session_state.get(confidence_key(pos), 3))
    try:
        stored = quizzes.record_answer(code, name, key, pos, CHOICES[choice], confidence,
                                       seconds=None if shown is None else time.time() - shown)
    except quizzes.QuizRefused as exc:
        st.session_state[FLASH] = str(exc)
        return
    if (stored.answer, stored.confidence) != (CHOICES[choice], confidence):  # answered in another tab first
        st.session_state[FLASH] = (f"This tile was already answered, in another tab or window: that first answer "
                                   f"({NAMES[stored.answer]}, confidence {stored.confidence}/5) is the one that "
                                   "counts; this one was not recorded.")


def _go(pos: int) -> None:
    st.session_state[AT] = pos


def question(quiz: quizzes.QuizInfo, name: str, key: str, pos: int) -> None:
    """Tile ``pos`` with the answer form: pixels only."""
    st.session_state.setdefault(shown_key(quiz.code, pos), time.time())
    st.image(feedback.tile_png(quiz.source_root, quiz.tile_ids[pos]), width=feedback.SCALE * 96,
             caption="The label concerns the centre 32×32 pixels (green box).")
    with st.form(f"quiz-form-{pos}", border=False):
        st.radio("Is there tumour in the centre 32×32?", list(CHOICES), index=None, horizontal=True,
                 key=answer_key(pos))
        st.select_slider("Confidence (1 = a guess, 5 = certain)", options=[1, 2, 3, 4, 5], value=3,
                         key=confidence_key(pos))
        st.form_submit_button("Submit answer", type="primary", on_click=_submit,
                              args=(quiz.code, name, key, pos))
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.warning(md(flash, 600))


def _model_and_truth(pred, quiz: quizzes.QuizInfo, rev: quizzes.Revealed) -> None:
    """Truth, the student's answer, the model's probability and decision, tile and Grad-CAM side by side.

    P and the decision are the ones stored with the quiz, as the class view shows them; only the Grad-CAM map
    is computed now, by the model loaded now."""
    decision = NAMES[int(rev.p >= quiz.threshold)]
    c = st.columns(2)
    c[0].image(feedback.tile_png(quiz.source_root, rev.dataset_id), width=feedback.SCALE * 96,
               caption=f"Truth: {NAMES[rev.label]} (centre 32×32, green box)")
    c[1].image(feedback.cam_png(pred, quiz.source_root, rev.dataset_id), width=feedback.SCALE * 96, caption="Grad-CAM of the model's tumour score")
    m = st.columns(4)
    m[0].metric("Truth", NAMES[rev.label])
    m[1].metric("Your answer", NAMES[rev.answer], f"confidence {rev.confidence}/5", delta_color="off",
                delta_arrow="off")
    m[2].metric("Model P(tumour)", f"{rev.p:.3f}", help="Calibrated probability, mean of the 8 dihedral views, "
                                                       "as stored when the quiz was made.")
    m[3].metric("Model decision", decision, help=f"tumour when P(tumour) ≥ {quiz.threshold:.3f}")
    if pred.sha256 != quiz.model_sha256:
        st.caption("The model loaded now is not the one the quiz was made with; its Grad-CAM map may differ.")


def feedback_view(quiz: quizzes.QuizInfo, name: str, step: int, seq: list[int], done: set[int]) -> None:
    """The feedback on the tile at ``step`` of the student's order ``seq``, and the way on (``done``: the
    steps answered)."""
    rev = quizzes.reveal(quiz.code, name, seq[step])
    if rev is None:  # cannot happen for an answered tile; never show anything else then
        st.error("This answer was not found; reload the page.")
        return
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.warning(md(flash, 600), icon=":material/tab_duplicate:")
    right = rev.answer == rev.label
    (st.success if right else st.error)(
        f"{'Right' if right else 'Not this one'}: the centre of this tile is **{NAMES[rev.label]}**; you "
        f"answered **{NAMES[rev.answer]}**.", icon=":material/check_circle:" if right else ":material/cancel:")
    _model_and_truth(state.predictor(), quiz, rev)
    st.caption(feedback.EXPLANATION)
    nxt = first_open(quiz.size, done, step)
    st.button("See my results" if nxt == quiz.size else "Next tile", type="primary", key=f"quiz-next-{step}",
              on_click=_go, args=(nxt,))


def review(quiz: quizzes.QuizInfo, name: str, seq: list[int]) -> None:
    """The end of the quiz: score, sensitivity and specificity on the model's ROC, the tiles missed (numbered
    as the student met them, in their order ``seq``)."""
    step_of = {p: i for i, p in enumerate(seq)}
    done = sorted(quizzes.revealed(quiz.code, name), key=lambda r: step_of.get(r.position, r.position))
    df = pd.DataFrame([r.__dict__ for r in done])
    m = reader_metrics.reader_point(df["label"], df["answer"])
    st.subheader(f"Your results, {md(name)}")
    c = st.columns(4)
    c[0].metric("Score", f"{m['correct']} / {m['n']}")
    c[1].metric("Sensitivity", _pct(m["sensitivity"]), help="Tumour tiles you called tumour.")
    c[2].metric("Specificity", _pct(m["specificity"]), help="Tiles without tumour you called no tumour.")
    model = reader_metrics.reader_point(df["label"], (df["p"] >= quiz.threshold).astype(int))
    c[3].metric("The model's score", f"{model['correct']} / {model['n']}")
    if df["label"].nunique() == 2:
        you = pd.DataFrame([{"student": "you", "sensitivity": m["sensitivity"], "specificity": m["specificity"]}])
        st.plotly_chart(reader_metrics.roc_with_readers(df["label"], df["p"], quiz.threshold, you,
                                                 title="You on the model's ROC curve (the quiz tiles)",
                                                 readers_name="you"),
                        key="quiz-roc")
    missed = [r for r in done if r.answer != r.label]
    st.subheader(f"Tiles you missed ({len(missed)})")
    if not missed:
        st.success("None: every answer was right.")
    pred = state.predictor()
    for r in missed:
        st.markdown(f"**Tile {step_of.get(r.position, r.position) + 1}** · you answered {NAMES[r.answer]} (confidence {r.confidence}/5)")
        _model_and_truth(pred, quiz, r)
    if missed:
        st.caption(feedback.EXPLANATION)


def _pct(v: float) -> str:
    return "—" if v != v else f"{100 * v:.0f}%"
