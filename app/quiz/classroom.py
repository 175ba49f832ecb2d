"""The teacher's live class view of one quiz: who answered what, against the truth and the model.

It redraws itself every ``REFRESH_S`` seconds (a Streamlit fragment: only this part of the page reruns), so
answers from every student's session appear without the teacher touching anything.
"""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from app.quiz import feedback, reader_metrics
from app.store import quizzes
from model_training.bundle.disclaimer import DISCLAIMER
from model_training.data.spreadsheet import csv_bytes

REFRESH_S = 3
HARDEST = 5
EXPORT_COLUMNS = ["quiz", "student", "tile", "dataset_id", "truth", "answer", "correct", "confidence", "seconds",
                  "answered_at", "model_p", "model_decision"]


def class_csv(quiz: quizzes.QuizInfo, frame: pd.DataFrame) -> bytes:
    """Every answer as CSV (line 1: the research-use line and the quiz); names cannot run as formulas."""
    name = {1: "tumour", 0: "no tumour"}
    out = pd.DataFrame({
        "quiz": quiz.code,
        "student": [str(s) for s in frame["student"]],
        "tile": frame["position"] + 1, "dataset_id": frame["dataset_id"], "truth": frame["label"].map(name),
        "answer": frame["answer"].map(name), "correct": (frame["answer"] == frame["label"]).astype(int),
        "confidence": frame["confidence"], "seconds": frame["seconds"].round(1),
        "answered_at": [pd.Timestamp(t).isoformat(timespec="seconds") for t in frame["answered_at"]],
        "model_p": frame["p"].round(4),
        "model_decision": [("tumour" if p >= quiz.threshold else "no tumour") for p in frame["p"]],
    }, columns=EXPORT_COLUMNS)
    return csv_bytes(out, f"{DISCLAIMER} PathReview quiz {quiz.code}: {quiz.description}, {quiz.size} tiles, "
                          f"model sha256 {quiz.model_sha256}, threshold {quiz.threshold:.6f}.")


def _confusion(frame: pd.DataFrame):
    """The class's answers against the truth, as counts."""
    z = [[int(((frame.label == t) & (frame.answer == a)).sum()) for a in (0, 1)] for t in (0, 1)]
    fig = px.imshow(z, text_auto=True, color_continuous_scale="Blues", x=["said no tumour", "said tumour"],
                    y=["truly no tumour", "truly tumour"])
    fig.update_layout(title="The class's answers against the truth", height=400, coloraxis_showscale=False)
    return fig


def render(quiz: quizzes.QuizInfo, teacher_key: str, truth: bool = True) -> None:
    """One drawing of the class view (the page wraps it in the refreshing fragment).

    ``truth=False`` shows progress only (who answered how many tiles, how many answered each tile), so the view
    can be projected while students are still answering: early in a quiz any score, even the class's, would
    tell the truth of the first tiles.
    """
    frame, names = quizzes.class_frame(quiz.code, teacher_key)
    key = quizzes.quiz_key(quiz.code, teacher_key)
    students = reader_metrics.per_student(frame, names)
    tiles = reader_metrics.per_tile(key, frame, quiz.threshold)
    c = st.columns(4)
    c[0].metric("Students", len(names))
    c[1].metric("Answers", f"{len(frame)} / {len(names) * quiz.size}")
    if not truth:
        progress(students, tiles)
        export(quiz, frame)
        return
    c[2].metric("Class accuracy", f"{100 * (frame.answer == frame.label).mean():.0f}%" if len(frame) else "—")
    c[3].metric("Model accuracy", f"{100 * ((key.p >= quiz.threshold).astype(int) == key.label).mean():.0f}%")
    c = st.columns(2)
    if key["label"].nunique() == 2:
        c[0].plotly_chart(reader_metrics.roc_with_readers(key["label"], key["p"], quiz.threshold, students),
                          key="teach-roc")
    else:
        c[0].info("The quiz holds one class only: no ROC curve.")
    if len(frame):
        c[1].plotly_chart(_confusion(frame), key="teach-confusion")
    st.markdown("**Students**")
    st.dataframe(students, hide_index=True, key="teach-students", column_config={
        "sensitivity": st.column_config.NumberColumn(format="%.2f"),
        "specificity": st.column_config.NumberColumn(format="%.2f"),
        "mean confidence": st.column_config.NumberColumn(format="%.1f")})
    st.markdown("**Tiles** (how many students answered each, called it tumour, were right)")
    shown = tiles.assign(tile=tiles["position"] + 1)[["tile", "answered", "said_tumour", "right", "pct_right", "truth",
                                                      "p", "model", "dataset_id"]]
    shown = shown.rename(columns={"said_tumour": "said tumour", "pct_right": "% right", "p": "model P"})
    shown["% right"] = shown["% right"].map(lambda v: "—" if pd.isna(v) else f"{v:.0f}")  # "—" before answers
    st.dataframe(shown, hide_index=True, key="teach-tiles",
                 column_config={"model P": st.column_config.NumberColumn(format="%.3f")})
    hard = reader_metrics.hardest(tiles, HARDEST)
    if len(hard):
        st.markdown("**Hardest tiles so far**")
        cols = st.columns(HARDEST)
        for col, r in zip(cols, hard.itertuples()):
            col.image(feedback.tile_png(quiz.source_root, r.dataset_id), width="stretch",
                      caption=f"Tile {r.position + 1}: {r.truth}, {r.pct_right:.0f}% right, model P {r.p:.2f}")
    export(quiz, frame)


def progress(students: pd.DataFrame, tiles: pd.DataFrame) -> None:
    """How far each student and each tile is, with nothing of the truth."""
    st.markdown("**Students** (tiles answered)")
    st.dataframe(students[["student", "answered"]], hide_index=True, key="teach-progress-students")
    st.markdown("**Tiles** (students who answered each)")
    per_tile = pd.DataFrame([tiles["answered"].to_numpy()], columns=[f"{p + 1}" for p in tiles["position"]])
    st.dataframe(per_tile, hide_index=True, key="teach-progress-tiles")


def export(quiz: quizzes.QuizInfo, frame: pd.DataFrame) -> None:
    """The CSV download of every answer (the teacher's copy: it holds the truth)."""
    st.download_button("Export the answers (CSV)", class_csv(quiz, frame), file_name=f"quiz_{quiz.code}.csv",
                       mime="text/csv", on_click="ignore", key="teach-export", icon=":material/download:")


@st.fragment(run_every=REFRESH_S)
def live(quiz: quizzes.QuizInfo, teacher_key: str) -> None:
    """The class view, redrawn every ``REFRESH_S`` seconds."""
    truth = st.toggle("Show the truth", value=False, key="teach-truth",
                      help="Off (as the view opens) to project the class's progress while students are still "
                           "answering: nothing then tells which tiles are tumour, and the teacher key is hidden.")
    if truth:  # never on the screen that is projected with the truth off
        with st.expander("Teacher key", icon=":material/key:"):
            st.markdown(f"`{teacher_key}` — with the code it reopens this view (after a reload, or on another "
                        "computer). Keep it from the students: this view shows the truth.")
    render(quiz, teacher_key, truth)
