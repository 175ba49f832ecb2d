"""Teach: create a quiz from a labelled set, then follow the class live as students answer.

The class view shows the truth, so it opens only with the quiz's teacher key. The key stays in the teacher's
session, never in the page address (which a projector shows): after a reload the teacher types it again.
Students use the "Take a quiz" page.
"""
import secrets

import streamlit as st

from app.display.text import md
from app.quiz import classroom, create, selection, sources
from app.quiz.address import QP_QUIZ
from app.runtime import state
from app.store import open_store, quizzes
from model_training.data.sources import DatasetError

KEYS = "teach-keys"  # session: quiz code -> teacher key, for the quizzes this session created or opened

st.title("Teach")
status = open_store()
if not status.ok:
    st.error(status.message + " Quizzes need the store.", icon=":material/database:")
    st.stop()

code = quizzes.normalise_code(st.query_params.get(QP_QUIZ, ""))
teacher_key = st.session_state.setdefault(KEYS, {}).get(code, "")
is_open = bool(code and teacher_key and quizzes.teacher_ok(code, teacher_key))


def opened(quiz_code: str, key: str) -> None:
    """Remember the key in this session and show the quiz's class view."""
    st.session_state[KEYS][quiz_code] = key
    st.query_params[QP_QUIZ] = quiz_code
    st.session_state.pop("teach-seed", None)  # the next quiz gets a fresh seed
    st.rerun()


def create_form() -> None:
    """Choose the tiles of a new quiz; on success the page reopens on its class view."""
    choices = sources.allowed_sources()
    if not choices:
        st.info("No labelled tiles to quiz on: set `PATHREVIEW_DATA` to a labelled dataset.",
                icon=":material/folder_open:")
        return
    by_name = {s.name: s for s in choices}
    # a fresh seed for each quiz, so that two quizzes made with the defaults differ; the teacher may type one
    st.session_state.setdefault("teach-seed", secrets.randbelow(1_000_000))
    with st.form("teach-create", enter_to_submit=False):  # a quiz is made by its button, not by Enter in a box
        name = st.selectbox("Tiles from", list(by_name), key="teach-source",
                            help="A quiz draws from the validation split of the configured dataset, or from the "
                                 "example tiles shipped with PathReview.")
        c = st.columns(3)
        size = c[0].number_input("Tiles", 1, quizzes.MAX_SIZE, 20, key="teach-size")
        balance = c[1].slider("Tumour tiles (fraction)", 0.0, 1.0, 0.5, 0.05, key="teach-balance")
        seed = c[2].number_input("Seed", 0, 2**31 - 1, key="teach-seed",
                                 help="The same source, settings and seed give the same tiles in the same order.")
        hard = st.checkbox("Hard tiles first: those the model got wrong or scored close to its threshold",
                           key="teach-hard")
        creator = st.text_input("Your name (optional)", key="teach-creator",
                                help=f"Up to {quizzes.MAX_NAME} characters.")
        go = st.form_submit_button("Create the quiz", type="primary")
    if not go:
        return
    pred = state.predictor()
    try:
        with st.spinner("Choosing the tiles…"):
            new_code, new_key = create.make_quiz(by_name[name], pred, size=int(size), balance=float(balance),
                                                 hard=bool(hard), seed=int(seed), creator=creator)
    except (selection.SelectionError, quizzes.QuizRefused, DatasetError) as exc:
        st.error(md(exc, 600), icon=":material/error:")
        return
    opened(new_code, new_key)


def open_form() -> None:
    """Reopen the class view of an existing quiz with its code and teacher key."""
    with st.form("teach-open"):
        c = st.columns(2)
        typed = c[0].text_input("Quiz code", value=code, key="teach-code")
        typed_key = c[1].text_input("Teacher key", type="password", key="teach-key")
        go = st.form_submit_button("Open the class view")
    if go:
        if quizzes.teacher_ok(typed, typed_key):
            opened(quizzes.normalise_code(typed), typed_key)
        st.error("No quiz has that code and teacher key.", icon=":material/lock:")


with st.expander("Create a quiz", expanded=not is_open, icon=":material/add_circle:"):
    create_form()

if not is_open:
    st.subheader("Open a class view")
    open_form()
    st.stop()

quiz = quizzes.get_quiz(code)
st.subheader(f"Quiz {quiz.code}")
st.markdown(f"Students open **Take a quiz** and enter the code **`{quiz.code}`**. "
            f"{quiz.size} tiles from {md(quiz.description)}; tumour fraction {quiz.balance:.2f}"
            f"{', hard tiles first' if quiz.hard else ''}; seed {quiz.seed}.")
closed = quizzes.locked_at(quiz.code)
if closed is None:
    if st.button("Close the quiz to new names", key="teach-lock", icon=":material/lock:",
                 help="Once the class has joined (the Students list below): those who joined continue, and a new "
                      "name, such as a second name to peek at the answers, is refused."):
        quizzes.lock(quiz.code, teacher_key)
        st.rerun()
else:
    st.caption(f"Closed to new names at {closed:%H:%M} UTC: the students who joined continue.")
st.page_link("views/quiz.py", label="Take a quiz", icon=":material/school:")
if sources.allowed(quiz.source_root) is None:
    st.warning(f"The tiles of this quiz ({md(quiz.description)}) are not available on this server.")
    st.stop()
classroom.live(quiz, teacher_key)
