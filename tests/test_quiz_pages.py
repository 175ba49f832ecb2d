"""The Teach and Take a quiz pages through ``AppTest``: the shipped model, real validation tiles, a SQLite store.

The truth-hiding test reads everything the page sent for the student's session before an answer: every element's
message (what the browser would receive) and the session state.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_user_text import unescape

from app.quiz import feedback
from app.quiz import reader_metrics as qmetrics
from app.quiz import selection, student
from app.store import db, quizzes, service
from model_training.bundle.files import DEFAULT_BUNDLE

pytestmark = pytest.mark.slow  # loads the shipped model

MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
TRUTH_WORDS = ("Truth", "truth", "P(tumour)", "Grad-CAM", "Right", "Not this one", "model", "Model")


@pytest.fixture
def env(monkeypatch, tmp_path, data_root):
    monkeypatch.setenv("PATHREVIEW_MODEL", str(DEFAULT_BUNDLE))
    monkeypatch.setenv("PATHREVIEW_AUDIT_LOG", str(tmp_path / "audit.csv"))
    monkeypatch.setenv("PATHREVIEW_DATA", str(data_root))
    monkeypatch.setenv("PATHREVIEW_DEBUG", "1")
    monkeypatch.setenv("PATHREVIEW_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    yield
    service.forget()
    db.dispose_all()


def page(name: str, **query):
    """A new browser session on ``views/<name>.py`` with ``query`` in its address."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    at.query_params.update(query)
    at.run()
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at


def click(at, label: str):
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def create(source: int = 0, size: int = 6, balance: float = 0.5, hard: bool = False, seed: int = 0):
    """The teacher's form; returns (page, code, teacher key)."""
    at = page("teach")
    sb = at.selectbox(key="teach-source")
    sb.set_value(sb.options[source])
    at.number_input(key="teach-size").set_value(size)
    at.slider(key="teach-balance").set_value(balance)
    at.number_input(key="teach-seed").set_value(seed)
    if hard:
        at.checkbox(key="teach-hard").check()
    click(at, "Create the quiz")
    assert not [e.value for e in at.error]
    code = at.query_params["quiz"]
    return at, code, at.session_state["teach-keys"][code]


def join(code: str, name: str):
    at = page("quiz")
    at.text_input(key="quiz-code").input(code)
    at.text_input(key="quiz-name").input(name)
    return click(at, "Start")


def answer(at, step: int, choice: str, confidence: int = 3):
    """Answer the tile on screen (``step`` is the tile number the student sees, minus one, for the reader)."""
    radio = next(r for r in at.radio if r.key.startswith("quiz-answer-"))
    pos = radio.key.rsplit("-", 1)[1]
    radio.set_value(choice)
    at.select_slider(key=f"quiz-confidence-{pos}").set_value(confidence)
    return click(at, "Submit answer")


def sent(block) -> str:
    """The text of every element message under ``block`` (what the browser receives for it)."""
    out = [str(getattr(block, "proto", ""))]
    for child in getattr(block, "children", {}).values():
        out.append(sent(child))
    return "\n".join(out)


def test_quiz_creation_is_deterministic_balanced_and_can_pick_hard_tiles(env):
    teach, code, key = create(size=10, balance=0.3, seed=5)
    assert any(m.label == "Students" and m.value == "0" for m in teach.metric)
    _, code2, key2 = create(size=10, balance=0.3, seed=5)
    _, code3, key3 = create(size=10, balance=0.3, seed=6)
    a, b, c = quizzes.quiz_key(code, key), quizzes.quiz_key(code2, key2), quizzes.quiz_key(code3, key3)
    assert code != code2 and list(a["dataset_id"]) == list(b["dataset_id"])
    assert list(c["dataset_id"]) != list(a["dataset_id"])
    assert int(a["label"].sum()) == 3 and len(a) == 10
    quiz = quizzes.get_quiz(code)
    assert quiz.tile_ids == tuple(a["dataset_id"]) and quiz.source_kind == "dataset"
    _, hcode, hkey = create(size=10, balance=0.5, hard=True, seed=5)
    h, hq = quizzes.quiz_key(hcode, hkey), quizzes.get_quiz(hcode)
    assert selection.hard_mask(h["label"], h["p"], hq.threshold).all()
    shipped = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())["threshold"]
    assert hq.hard and hq.threshold == pytest.approx(shipped, abs=1e-3)  # the shipped model's TTA threshold


def test_truth_is_hidden_until_the_student_answers(env):
    _, code, key = create(source=1, size=4)
    truth = quizzes.quiz_key(code, key)
    at = join(code, "Ann")
    assert at.subheader[0].value == "Tile 1 of 4"
    body, state = sent(at.main), at.session_state.to_dict()
    for word in TRUTH_WORDS:
        assert word not in body, word
    for p in truth["p"]:
        assert f"{p:.3f}" not in body and f"{p:.2f}" not in body
    assert not [v for v in state.values() if isinstance(v, float) and 0 <= v <= 1]
    assert not [k for k in state if any(w in k.lower() for w in ("label", "truth", "prob"))]
    assert not [m for m in at.metric] and len(at.image) == 1
    address = dict(at.query_params)
    assert set(address) == {"quiz", "student", "key", "at"} and address["at"] == "1"
    assert not [p for p in truth["p"] if f"{p:.2f}"[1:] in "".join(address.values())]
    first = truth.set_index("position").loc[student.order(code, "Ann", 4)[0]]  # Ann's own first tile
    tid = first["dataset_id"]
    assert not [k for k in feedback._views._items if k[2] == tid]  # the model has not looked at it yet

    answer(at, 0, "tumour", 4)
    got = {m.label: m.value for m in at.metric}
    assert got["Truth"] == ("tumour" if first["label"] == 1 else "no tumour")
    assert got["Your answer"] == "tumour"
    # the score stored when the quiz was made, as the class view shows it (not a live score of another engine)
    assert got["Model P(tumour)"] == f"{first['p']:.3f}"
    assert [k for k in feedback._views._items if k[2] == tid]
    assert len(at.image) == 2 and any("Grad-CAM" in c for img in at.image for c in img.captions)
    assert any(feedback.EXPLANATION == c.value for c in at.caption)
    # the next tile is hidden again
    click(at, "Next tile")
    body = sent(at.main)
    assert at.subheader[0].value == "Tile 2 of 4" and "Truth" not in body and "P(tumour)" not in body


def test_a_reload_continues_where_the_student_was(env):
    _, code, key = create(source=1, size=4)
    at = join(code, "Bob")
    answer(at, 0, "no tumour")
    click(at, "Next tile")
    answer(at, 1, "tumour")
    assert at.query_params["at"] == "2"
    qp = dict(at.query_params)
    assert set(qp) == {"quiz", "student", "key", "at"} and qp["at"] == "2"  # on tile 2's feedback
    again = page("quiz", **qp)  # a new session with the same address: a reload
    assert again.subheader[0].value == "Tile 2 of 4" and any(m.label == "Truth" for m in again.metric)
    assert "2 of 4 tiles answered" in again.get("progress")[0].proto.text
    click(again, "Next tile")
    assert again.subheader[0].value == "Tile 3 of 4" and again.query_params["at"] == "3"
    qp.pop("at")
    fresh = page("quiz", **qp)  # an address without the tile: the first unanswered one
    assert fresh.subheader[0].value == "Tile 3 of 4" and not fresh.metric
    someone = page("quiz", quiz=code, student="Bob", key="guess")  # the name without its key
    assert any("already taken" in w.value for w in someone.warning)
    assert someone.text_input(key="quiz-name").value == ""


def test_the_review_and_the_class_view_follow_the_answers(env):
    teach, code, key = create(source=1, size=4, balance=0.5)
    truth = quizzes.quiz_key(code, key)
    at = join(code, "Cy")
    answers = ["tumour", "tumour", "no tumour", "no tumour"]
    for pos, a in enumerate(answers):
        answer(at, pos, a)
        click(at, "See my results" if pos == 3 else "Next tile")
    got = {m.label: m.value for m in at.metric}
    labels = truth.set_index("position").loc[student.order(code, "Cy", 4), "label"]  # in Cy's order
    m = qmetrics.reader_point(labels, [1 if a == "tumour" else 0 for a in answers])
    assert got["Score"] == f"{m['correct']} / 4"
    assert got["Sensitivity"] == f"{100 * m['sensitivity']:.0f}%"
    assert got["Specificity"] == f"{100 * m['specificity']:.0f}%"
    assert any(s.value == "Tiles you missed (%d)" % (4 - m["correct"]) for s in at.subheader)
    assert len(at.get("plotly_chart")) == 1

    assert set(teach.query_params) == {"quiz"}  # the teacher key never goes into the address
    teach.toggle(key="teach-truth").set_value(True).run()  # and the live view's next refresh
    assert not teach.exception
    got = {m.label: m.value for m in teach.metric}
    assert got["Students"] == "1" and got["Answers"] == "4 / 4"
    students = teach.dataframe[0].value
    assert list(students["student"]) == ["Cy"] and int(students.loc[0, "correct"]) == m["correct"]
    assert teach.get("download_button")


def test_the_class_view_needs_the_teacher_key_and_can_hide_the_truth(env):
    teach, code, key = create(source=1, size=4)
    at = join(code, "Di")
    answer(at, 0, "tumour")
    other = page("teach", quiz=code)  # another browser with the code only
    assert not other.metric and other.text_input(key="teach-code").value == code
    other.text_input(key="teach-key").input("not the key")
    click(other, "Open the class view")
    assert any("No quiz has that code" in e.value for e in other.error) and not other.metric
    other.text_input(key="teach-key").input(key)
    click(other, "Open the class view")
    # it opens as it is projected while students answer: progress only, and no teacher key on the screen
    assert other.toggle(key="teach-truth").value is False
    assert [m.label for m in other.metric] == ["Students", "Answers"]
    assert not other.get("plotly_chart") and not other.image and key not in sent(other.main)
    assert not [m.value for m in other.markdown if "said tumour" in m.value or "right" in m.value]
    assert [d.value.columns.tolist() for d in other.dataframe] == [["student", "answered"], ["1", "2", "3", "4"]]
    other.toggle(key="teach-truth").set_value(True).run()
    assert {m.label: m.value for m in other.metric}["Answers"] == "1 / 4" and key in sent(other.main)


def test_quiz_sources_are_the_configured_roots_only(env, monkeypatch):
    monkeypatch.delenv("PATHREVIEW_DATA")
    assert page("teach").selectbox(key="teach-source").options == ["The example tiles shipped with PathReview"]
    spec = quizzes.QuizSpec("dataset", "/etc", "not a quiz source", 1, 1.0, False, 0, "ab" * 32, 0.5)
    code, _ = quizzes.create_quiz(spec, [quizzes.TileIn("passwd", 1, 0.9)])  # a row written by hand
    at = join(code, "Eve")
    assert any("not available on this server" in e.value for e in at.error) and not at.image


def test_other_labelled_datasets_under_the_configured_roots_are_quiz_sources(env, monkeypatch, tmp_path):
    import shutil

    import pandas as pd

    from app.quiz import sources

    labels = pd.read_csv(sources.example_tiles.folder() / "labels.csv")
    course = tmp_path / "course"
    for row in labels.head(8).itertuples():
        (course / str(row.label)).mkdir(parents=True, exist_ok=True)
        shutil.copy(next(sources.example_tiles.folder().glob(f"{row.id}.*")), course / str(row.label))
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATHREVIEW_DATA_ROOTS", f"{course}{os.pathsep}{tmp_path / 'empty'}")
    options = page("teach").selectbox(key="teach-source").options
    assert f"Labelled dataset {course.resolve()}" in options
    assert not any("empty" in o for o in options)


def test_a_student_name_is_shown_as_typed_on_the_quiz_and_the_class_view(env):
    from test_user_text import STUDENT

    _, code, _ = create(source=1, size=4)
    name = STUDENT[:quizzes.MAX_NAME]
    at = join(code, name)
    body = sent(at.main)  # every element, the progress bar's text too
    assert "click me" in body and "](http" not in body and "**bold**" not in body and "$x^2$" not in body


def test_a_long_display_name_is_shortened_not_emptied(env):
    """A browser empties a text field pasted with more than its limit: the field has none; the server keeps
    the first 64 characters."""
    _, code, _ = create(source=1, size=4)
    at = page("quiz")
    assert not at.text_input(key="quiz-name").max_chars
    at.text_input(key="quiz-code").input(code)
    at.text_input(key="quiz-name").input("S" * 100)
    click(at, "Start")
    assert at.query_params["student"] == "S" * quizzes.MAX_NAME


def test_each_quiz_gets_a_fresh_seed_unless_the_teacher_types_one(env):
    at = page("teach")
    first = at.number_input(key="teach-seed").value
    click(at, "Create the quiz")
    made = quizzes.get_quiz(at.query_params["quiz"])
    assert made.seed == first
    again = at.number_input(key="teach-seed").value
    other = page("teach").number_input(key="teach-seed").value
    assert len({first, again, other}) == 3  # random seeds: a clash is one in a million


def test_a_second_tab_answering_an_answered_tile_is_told_its_answer_was_not_recorded(env):
    _, code, _ = create(source=1, size=4)
    one = join(code, "Ed")
    two = page("quiz", **dict(one.query_params))  # the same student in a second tab, on the same tile
    assert two.subheader[0].value == "Tile 1 of 4"
    answer(one, 0, "tumour", 5)
    answer(two, 0, "no tumour", 1)
    said = [w.value for w in two.warning]
    assert any("already answered" in unescape(w) and "tumour, confidence 5/5" in unescape(w) for w in said), said
    assert quizzes.answers(code, "Ed")[student.order(code, "Ed", 4)[0]].confidence == 5


def test_a_student_in_a_quiz_sees_the_quiz_alone(env):
    _, code, _ = create(source=1, size=4)
    at = join(code, "Flo")
    assert not at.exception
    assert not at.sidebar.text_input  # no reviewer name box
    body = sent(at.main)
    assert "Tile 1 of 4" in body and "Analyze tiles" not in sent(at) and "Validation browser" not in sent(at)


def test_a_closed_quiz_refuses_new_names_and_keeps_the_students_who_joined(env):
    teach, code, key = create(source=1, size=4)
    gus = join(code, "Gus")
    click(teach, "Close the quiz to new names")
    assert any("Closed to new names" in c.value for c in teach.caption)
    late = join(code, "Gus 2")
    assert any("closed to new names" in unescape(e.value) for e in late.error) and not late.image
    again = page("quiz", **dict(gus.query_params))  # Gus's own address: continues
    assert not again.exception and again.subheader[0].value == "Tile 1 of 4"
    assert quizzes.locked_at(code) is not None


def test_each_student_meets_the_tiles_in_an_order_of_their_own():
    orders = {name: student.order("ABC123", name, 20) for name in ("Ann", "Ann 2", "Bob", "Cy")}
    assert all(sorted(o) == list(range(20)) for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) == 4 and len({o[0] for o in orders.values()}) > 1
    assert student.order("ABC123", "Ann", 20) == orders["Ann"]  # the same on every visit



def test_the_class_view_says_dash_not_none_before_anyone_answered(env):
    teach, _, _ = create(source=1, size=4)
    teach.toggle(key="teach-truth").set_value(True).run()
    tiles = next(d.value for d in teach.dataframe if "% right" in d.value.columns)
    assert tiles["% right"].tolist() == ["—"] * 4
