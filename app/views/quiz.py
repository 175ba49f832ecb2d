"""Take a quiz: join with the code and a display name, read each tile, then see the truth and the model.

Who the student is lives in the page address (quiz code, name and a random key), so a reload continues where
it was; answers live in the store, so the class view follows them live.
"""
import streamlit as st

from app.display.text import md
from app.quiz import sources, student
from app.quiz.address import QP_KEY, QP_QUIZ, QP_STUDENT
from app.store import open_store, quizzes
from model_training.data.decode import TileError
from model_training.data.sources import DatasetError

JOINED = "quiz-joined"  # session: (code, name, key) once checked against the store

st.title("Take a quiz")
status = open_store()
if not status.ok:
    st.error(status.message + " Quizzes need the store.", icon=":material/database:")
    st.stop()


def joined() -> tuple[str, str, str] | None:
    """(code, name, key) from the page address, checked against the store once per session."""
    qp = st.query_params
    who = (quizzes.normalise_code(qp.get(QP_QUIZ, "")), qp.get(QP_STUDENT, ""), qp.get(QP_KEY, ""))
    if not all(who):
        return None
    if st.session_state.get(JOINED) != who:
        try:
            quizzes.join(*who)
        except quizzes.QuizRefused as exc:
            st.warning(md(exc, 600), icon=":material/person_off:")
            return None
        st.session_state[JOINED] = who
        st.session_state.pop(student.AT, None)
    return who


def join_form() -> None:
    st.markdown("Your teacher gives you a quiz code. For each tile, say whether its centre holds tumour; then "
                "you see the truth, the model's probability and where the model looked.")
    with st.form("quiz-join"):
        code = st.text_input("Quiz code", value=st.query_params.get(QP_QUIZ, ""), max_chars=16, key="quiz-code")
        # no max_chars: a browser empties a field pasted with more than it allows; longer names are shortened
        name = st.text_input("Display name", key="quiz-name",
                             help=f"Up to {quizzes.MAX_NAME} characters, shown to your teacher and the class view; "
                                  "not checked against any account.")
        go = st.form_submit_button("Start", type="primary")
    if not go:
        st.stop()
    try:
        key = quizzes.join(code, name)
    except quizzes.QuizRefused as exc:
        st.error(md(exc, 600), icon=":material/error:")
        st.stop()
    st.query_params.update({QP_QUIZ: quizzes.normalise_code(code), QP_STUDENT: quizzes.clean_name(name),
                            QP_KEY: key})
    st.rerun()


who = joined()
if who is None:
    join_form()
code, name, key = who
quiz = quizzes.get_quiz(code)
if quiz is None:
    st.error(f"There is no quiz {md(code)} in the store.", icon=":material/error:")
    st.stop()
if sources.allowed(quiz.source_root) is None:
    st.error(f"The tiles of quiz {md(code)} ({md(quiz.description)}) are not available on this server.",
             icon=":material/folder_off:")
    st.stop()

seq = student.order(code, name, quiz.size)  # this student's own order of the tiles
answered = set(quizzes.answers(code, name))
done = {step for step, pos in enumerate(seq) if pos in answered}
step = student.position(quiz.size, done)
st.progress(len(answered) / quiz.size,
            text=f"Quiz **{md(code)}** · {md(name)} · {len(answered)} of {quiz.size} tiles answered")
try:
    if step == quiz.size:
        student.review(quiz, name, seq)
    elif step in done:
        st.subheader(f"Tile {step + 1} of {quiz.size}")
        student.feedback_view(quiz, name, step, seq, done)
    else:
        st.subheader(f"Tile {step + 1} of {quiz.size}")
        student.question(quiz, name, key, seq[step])
except (TileError, DatasetError) as exc:
    st.error(f"This tile cannot be read: {md(exc, 600)}", icon=":material/broken_image:")
