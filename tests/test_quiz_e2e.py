"""A teaching session end to end: a real ``streamlit run`` server on the shipped model and a SQLite store,
a teacher and two students in three Chromium contexts (three separate browser sessions).

Screenshots go to $PATHREVIEW_SCREENSHOTS (default: a pytest temp dir).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_e2e import running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LONG = 120_000  # ms
HIDDEN_BEFORE_ANSWER = ("Truth", "P(tumour)", "Grad-CAM", "Model decision")


@pytest.fixture(scope="module")
def server(data_root, tmp_path_factory):
    from model_training.bundle.files import DEFAULT_BUNDLE

    tmp = tmp_path_factory.mktemp("quiz-e2e")
    log = tmp / "streamlit.log"
    with running(DEFAULT_BUNDLE, f"sqlite:///{tmp / 'store.db'}", data_root, log) as url:
        yield {"url": url, "log": log}


@pytest.fixture
def session(browser, server):
    """Open a new browser context (its own Streamlit session) per call; none may reach beyond the server."""
    contexts, elsewhere = [], []

    def new():
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        ctx.on("request", lambda r: None if r.url.startswith((server["url"], "data:", "blob:"))
               else elsewhere.append(r.url))
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(LONG)
        return pg
    yield new
    for ctx in contexts:
        ctx.close()
    assert not elsewhere, elsewhere


def open_page(pg, server, path: str) -> None:
    pg.goto(f"{server['url']}/{path}")
    pg.get_by_text("Research use only — not for diagnosis.").first.wait_for()


def take_quiz(pg, server, code: str, name: str, answers: list[str]) -> None:
    open_page(pg, server, "quiz")
    pg.get_by_label("Quiz code", exact=True).fill(code)
    pg.get_by_label("Display name", exact=True).fill(name)
    pg.get_by_role("button", name="Start").click()
    for i, choice in enumerate(answers):
        pg.get_by_text(f"Tile {i + 1} of {len(answers)}").wait_for()
        pg.get_by_role("button", name="Submit answer").wait_for()
        html = pg.content()
        for word in HIDDEN_BEFORE_ANSWER:  # nothing of the truth or the model before the answer
            assert word not in html, (name, i, word)
        pg.locator('[data-testid="stRadio"]').get_by_text(choice, exact=True).click()
        pg.get_by_role("button", name="Submit answer").click()
        pg.get_by_text("Model P(tumour)").wait_for()
        pg.get_by_text("Grad-CAM of the model's tumour score").wait_for()
        pg.get_by_text("Truth", exact=True).wait_for()
        last = i == len(answers) - 1
        pg.get_by_role("button", name="See my results" if last else "Next tile").click()
    pg.get_by_text(f"Your results, {name}").wait_for()


def test_a_teacher_creates_a_quiz_two_students_take_it_and_the_class_view_shows_both(session, server, shots):
    teacher = session()
    open_page(teacher, server, "teach")
    size = teacher.get_by_label("Tiles", exact=True)
    size.fill("3")
    size.press("Tab")
    teacher.get_by_role("button", name="Create the quiz").click()
    heading = teacher.get_by_role("heading", name=re.compile(r"^Quiz [A-Z0-9]{6}$"))
    heading.wait_for()
    code = heading.inner_text().split()[-1]
    assert teacher.url.endswith(f"teach?quiz={code}")  # the teacher key stays out of the address

    ann, bob = session(), session()
    take_quiz(ann, server, code, "Ann", ["tumour", "no tumour", "tumour"])
    take_quiz(bob, server, code, "Bob", ["no tumour", "no tumour", "no tumour"])
    assert "key=" in bob.url and "Truth" not in bob.url

    # the teacher did nothing since creating the quiz: the live view refreshed itself
    teacher.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMetric"]')].some(
        m => m.innerText.includes('Students') && m.innerText.includes('2'))""")
    assert teacher.locator(".js-plotly-plot").count() == 0  # it opens with the truth off, as it is projected
    teacher.get_by_text("Show the truth").click()
    plot = teacher.locator(".js-plotly-plot").first
    plot.get_by_text("Ann", exact=True).wait_for(state="attached")
    plot.get_by_text("Bob", exact=True).wait_for(state="attached")
    teacher.get_by_text("6 / 6").wait_for()
    teacher.wait_for_timeout(800)
    teacher.screenshot(path=str(shots / "teach_class_view.png"), full_page=True)

    with teacher.expect_download() as dl:
        teacher.get_by_role("button", name="Export the answers (CSV)").click()
    lines = Path(dl.value.path()).read_text("utf-8").splitlines()
    assert lines[0].endswith(",notice") and "Research use only" in lines[1] and code in lines[1]
    assert len(lines) == 1 + 6 and {ln.split(",")[1] for ln in lines[1:]} == {"Ann", "Bob"}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("PATHREVIEW_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_enter_in_a_box_of_the_quiz_form_does_not_create_the_quiz(session, server):
    """Enter in the Tiles box created the quiz at once, before the teacher's name was typed."""
    teacher = session()
    open_page(teacher, server, "teach")
    size = teacher.get_by_label("Tiles", exact=True)
    size.fill("4")
    size.press("Enter")
    teacher.get_by_label("Your name (optional)", exact=True).fill("Dr. Teach")
    teacher.wait_for_timeout(1500)  # time for a submission to reach the server, were there one
    assert "quiz=" not in teacher.url
    assert teacher.get_by_role("heading", name=re.compile(r"^Quiz [A-Z0-9]{6}$")).count() == 0
    teacher.get_by_role("button", name="Create the quiz").click()
    teacher.get_by_role("heading", name=re.compile(r"^Quiz [A-Z0-9]{6}$")).wait_for()
