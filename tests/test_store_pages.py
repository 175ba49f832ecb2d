"""The review parts of the app through ``AppTest`` on the shipped model: a reviewer name is required, the
queue and the Agreement page read the store, data folders outside the roots are refused, and an unreachable
store leaves scoring working."""
from __future__ import annotations

import os

import pytest
from test_user_text import unescape

from app import store
from app.inputs import roots
from model_training.data.decode import read_tile

pytestmark = pytest.mark.slow  # loads the shipped model


@pytest.fixture
def app(app_session):
    """A fresh AppTest session with its own SQLite store; page errors raise (conftest's ``app_session``)."""
    return app_session


def errors(at) -> list[str]:
    """The error messages as the reader sees them (names in them are escaped for markdown)."""
    return [unescape(e.value) for e in at.error]


def record(at, key: str, choice: str, comment: str = ""):
    at.radio(key=f"{key}-choice").set_value(choice)
    if comment:
        at.text_area(key=f"{key}-comment").input(comment)
    next(b for b in at.button if b.label == "Record review").click().run()
    return at


def test_a_review_without_a_name_is_refused_and_with_one_recorded(app, data_root):
    at = app()
    assert any("Identities are not verified" in c.value for c in at.sidebar.caption)
    at.button(key="analyze-examples").click().run()
    record(at, "analyze", "agree")
    assert not at.exception and any("needs a reviewer" in e for e in errors(at))
    assert store.reviews_frame(url=app.url).empty

    at.text_input(key="reviewer").input("dr. named").run()
    record(at, "analyze", "disagree", "stroma")
    assert any("Recorded" in s.value for s in at.success)
    rows = store.reviews_frame(url=app.url)
    assert rows["reviewer"].tolist() == ["dr. named"] and rows["decision"].tolist() == ["disagree"]
    assert not rows["reviewer_verified"].iloc[0]
    # a shipped example tile keeps where it came from and its known label, so the Agreement page can use it
    from app.inputs import example_tiles

    assert rows["source"].tolist() == ["dataset"] and rows["dataset_root"].iloc[0] == str(example_tiles.folder())
    assert rows["label"].iloc[0] == example_tiles.labels()[rows["dataset_id"].iloc[0]]
    # a second review of the same tile is a correction that supersedes the first
    assert any("supersedes #" in c.value for c in at.caption)
    record(at, "analyze", "agree")
    history = store.reviews_frame(url=app.url, current_only=False)
    assert history["superseded"].tolist() == [True, False]
    assert history["supersedes_id"].iloc[1] == history["review_id"].iloc[0]


def test_validation_refuses_folders_outside_the_roots(app, tmp_path, data_root):
    at = app("views/validation.py")
    at.text_input(key="val-path").input("/etc").run()
    assert not at.exception and "/etc is outside the folders this server may open" in errors(at)[0]
    at.text_input(key="val-path").input(str(data_root / ".." / ".." / "..")).run()
    assert "outside the folders" in errors(at)[0]
    link = tmp_path / "inside-looking-out"
    link.symlink_to("/etc")
    with pytest.raises(roots.PathRefused, match="inside-looking-out is outside the folders") as refused:
        roots.check(link, [tmp_path.resolve()])
    assert "/etc" not in str(refused.value)  # where the link leads is not said
    at.text_input(key="val-path").input(str(data_root / "nowhere")).run()  # inside: the dataset's own error
    assert "no such file or folder" in errors(at)[0]


def test_data_roots_come_from_both_variables(monkeypatch, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    monkeypatch.setenv("PATHREVIEW_DATA", str(a))
    monkeypatch.setenv("PATHREVIEW_DATA_ROOTS", f"{b}{os.pathsep}{tmp_path / 'c'}")
    assert roots.roots()[:3] == [a.resolve(), b.resolve(), (tmp_path / "c").resolve()]
    assert roots.check(b / "x" / ".." / "y") == (b / "y").resolve()
    with pytest.raises(roots.PathRefused, match="PATHREVIEW_DATA_ROOTS"):
        roots.check(tmp_path)


def test_validation_tiles_join_the_queue_and_two_readers_review_them(app, data_root):
    at = app("views/validation.py", name="reader one")
    at.number_input(key="val-n").set_value(50).run()
    at.button(key="val-queue").click().run()
    assert not at.exception and any("in the review queue" in s.value for s in at.success)
    queued = store.queue("reader one", url=app.url)
    assert len(queued) > 0 and set(queued["source"]) == {"dataset"}

    at.switch_page("views/queue.py").run()
    assert not at.exception and at.dataframe[0].value["item_id"].tolist() == queued["item_id"].tolist()
    first = at.selectbox(key="queue-pick").value
    record(at, "queue", "agree")
    assert at.selectbox(key="queue-pick").value != first  # the next pending item
    second = app("views/queue.py", name="reader two")
    assert "their decisions stay hidden" in " ".join(c.value for c in second.caption)
    record(second, "queue", "disagree")
    reviews = store.reviews_frame(url=app.url)
    assert set(reviews["reviewer"]) == {"reader one", "reader two"}
    assert reviews["dataset_root"].iloc[0] == str(data_root.resolve()) and reviews["label"].notna().all()
    tile = read_tile(data_root / "valid" / f"{reviews['dataset_id'].iloc[0]}.jpg")
    assert reviews["pixel_sha256"].iloc[0] == store.pixel_sha256(tile)

    agree = app("views/agreement.py", name="reader one")
    assert not agree.exception and not errors(agree)
    pairs = agree.dataframe[2].value
    assert pairs[["reader_a", "reader_b", "n"]].values.tolist() == [["reader one", "reader two", 1]]
    assert len(agree.get("plotly_chart")) == 2  # ROC with the readers, kappa heat map


def test_an_unreachable_store_disables_reviews_but_scoring_works(app, monkeypatch):
    monkeypatch.setenv("PATHREVIEW_DB_URL", "postgresql+psycopg://pathreview:hunter2@127.0.0.1:1/reviews")
    at = app(name="dr. a")
    msg = [e for e in errors(at) if "cannot be reached" in e]
    assert msg and "hunter2" not in msg[0] and msg[0].endswith("reviews are disabled.")
    assert "postgresql+psycopg://pathreview:***@127.0.0.1:1/reviews" in msg[0]
    at.button(key="analyze-examples").click().run()
    assert not at.exception and len(at.dataframe[0].value) > 0  # the tiles were scored
    assert any("cannot be reached" in e for e in errors(at)) and not [b for b in at.button if b.label == "Record review"]
    for page in ("views/queue.py", "views/agreement.py"):
        at.switch_page(page).run()
        assert not at.exception and any("cannot be reached" in e for e in errors(at))


def test_a_long_reviewer_name_is_kept_to_64_characters_and_said_so(app, data_root):
    long = "Dr. " + "Longname-" * 52  # 472 characters made the kappa map unreadable
    at = app(name=long)
    assert any("kept to 64 characters" in c.value for c in at.sidebar.caption)
    at.button(key="analyze-examples").click().run()
    record(at, "analyze", "agree")
    assert store.reviews_frame(url=app.url)["reviewer"].tolist() == [long[:64]]


def test_a_reload_keeps_the_typed_reviewer_name(app):
    at = app()
    at.text_input(key="reviewer").input("dr. reload").run()
    assert at.query_params["reviewer"] in ("dr. reload", ["dr. reload"])
    # a reload is a new session that keeps only the page address
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    again = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app" / "main.py"), default_timeout=300)
    again.query_params["reviewer"] = "dr. reload"
    again.run()
    assert again.text_input(key="reviewer").value == "dr. reload"
    assert any("review(s) recorded in this session" in c.value for c in again.sidebar.caption)
