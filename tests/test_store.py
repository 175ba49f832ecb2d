"""The review store on a real SQLite file and a real PostgreSQL server: items, append-only reviews,
corrections that supersede, the queue, provenance and the CSV export."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from test_quiz import make_quiz

from app import store
from app.store import db, migrate, quizzes

MODEL = "ab" * 32


def tile(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (96, 96, 3), dtype=np.uint8)


def upload(seed: int, p: float = 0.9, **kw) -> store.ItemIn:
    args = dict(source="upload", name=f"t{seed}.tif", upload_name=f"t{seed}.tif", model_sha256=MODEL, p=p,
                spread=0.02, threshold=0.5)
    return store.ItemIn.from_tile(tile(seed), **{**args, **kw})


def test_migration_on_start_reaches_head_and_is_idempotent(store_url):
    eng = db.engine(store_url)
    assert migrate.current(eng) == migrate.head()  # later revisions (0002_quizzes) build on 0001
    migrate.upgrade(eng)  # a second instance starting: nothing to do
    assert migrate.current(eng) == migrate.head()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert store.open_store(url).ok
    with db.engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose_all()


def test_items_keep_provenance_and_are_queued_once(store_url):
    data = tile(1)
    ds = store.ItemIn.from_tile(data, source="dataset", name="abc", dataset_root="/data/pcam", dataset_id="abc",
                                model_sha256=MODEL, p=0.3, spread=0.2, threshold=0.5, needs_review=True, label=1)
    sl = store.ItemIn.from_tile(data, source="slide", name="s.svs @ 96, 192", slide="/slides/s.svs", x=96, y=192,
                                width=96, height=96, model_sha256=MODEL, p=0.7, spread=0.0, threshold=0.5)
    ids = store.add_items([ds, sl, ds])
    assert ids[0] == ids[2] != ids[1]
    assert store.add_items([ds]) == [ids[0]]  # another session queueing the same tile
    got = store.get_item(ids[1])
    assert (got["source"], got["slide"], got["x"], got["y"], got["width"], got["height"]) == \
        ("slide", "/slides/s.svs", 96, 192, 96, 96)
    assert got["model_decision"] == "tumour" and got["pixel_sha256"] == store.pixel_sha256(data)
    np.testing.assert_array_equal(store.tile_from_png(got["tile_png"]), data)
    assert store.get_item(ids[0])["label"] == 1 and store.get_item(ids[0])["dataset_root"] == "/data/pcam"


def test_an_item_the_gate_did_not_assess_is_queued_and_named_as_such(store_url):
    from app.display.quality import call_with_reason

    blurred, clean = upload(7, p=0.95, quality="blur", ood=0.8), upload(8, p=0.95, quality="ok", ood=0.4)
    ids = store.add_items([blurred, clean])
    assert store.get_item(ids[0])["quality"] == "blur" and store.get_item(ids[0])["ood"] == pytest.approx(0.8)
    queued = store.queue("dr. gate", status="pending").set_index("item_id")
    assert set(queued.index) == set(ids)  # the model would have called both tumour: both need a look
    assert call_with_reason(queued.at[ids[0], "model_decision"], queued.at[ids[0], "quality"]) == \
        "not assessed (out of focus)"
    assert call_with_reason(queued.at[ids[1], "model_decision"], queued.at[ids[1], "quality"]) == "tumour"
    with pytest.raises(store.StoreError, match="ood must be a finite number"):
        store.add_items([upload(9, ood=float("nan"))])


def test_record_correct_and_read_back(store_url):
    item = upload(2)
    first = store.record_review(item, store.Reviewer("dr. a"), "agree", "clear tumour")
    seen = store.Seen(p=0.45, spread=0.05, threshold=0.5)
    second = store.record_review(item, "dr. a", "disagree", "on reflection: reactive", seen=seen, supersedes=first)
    current = store.reviews_frame()
    assert list(current["review_id"]) == [second]
    row = current.iloc[0]
    assert row["supersedes_id"] == first and row["decision"] == "disagree"
    assert row["p"] == pytest.approx(0.45) and row["model_decision"] == "normal"  # what the reviewer saw
    assert row["item_p"] == pytest.approx(0.9) and row["upload_name"] == "t2.tif"
    history = store.reviews_frame(current_only=False)
    assert list(history["review_id"]) == [first, second] and list(history["superseded"]) == [True, False]
    assert store.my_review(row["item_id"], "dr. a")["id"] == second


@pytest.mark.parametrize("name", ["", "   ", None])
def test_a_review_without_a_reviewer_is_refused(store_url, name):
    with pytest.raises(store.ReviewRefused, match="needs a reviewer"):
        store.record_review(upload(3), name, "agree")
    assert store.reviews_frame().empty


def test_superseded_and_foreign_reviews_cannot_be_corrected(store_url):
    item = upload(4)
    first = store.record_review(item, "dr. a", "agree")
    with pytest.raises(store.ReviewRefused, match="already reviewed .* supersedes review #"):
        store.record_review(item, "dr. a", "disagree")
    second = store.record_review(item, "dr. a", "disagree", supersedes=first)
    with pytest.raises(store.ReviewRefused, match=f"already been superseded by review #{second}"):
        store.record_review(item, "dr. a", "unsure", supersedes=first)
    with pytest.raises(store.ReviewRefused, match="only its reviewer can correct it"):
        store.record_review(item, "dr. b", "unsure", supersedes=second)
    other = store.record_review(upload(5), "dr. a", "agree")
    with pytest.raises(store.ReviewRefused, match="about another item"):
        store.record_review(item, "dr. a", "unsure", supersedes=other)
    with pytest.raises(store.ReviewRefused, match="no review #999"):
        store.record_review(item, "dr. a", "unsure", supersedes=999)
    with pytest.raises(store.ReviewRefused, match="decision must be one of"):
        store.record_review(item, "dr. b", "maybe")
    assert len(store.reviews_frame(current_only=False)) == 3


def test_the_database_refuses_updates_and_deletes(store_url):
    store.record_review(upload(6), "dr. a", "agree")
    for sql in ("UPDATE reviews SET decision = 'disagree'", "DELETE FROM reviews", "DELETE FROM review_items"):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.session(store_url, write=True) as s:
                s.execute(text(sql))
    assert store.reviews_frame()["decision"].tolist() == ["agree"]


def _copy_with(table: str, column: str, value: str, conn) -> str:
    """SQL that rewrites every row of ``table`` with ``column`` set to ``value`` by replacing it (SQLite)."""
    cols = [r[1] for r in conn.execute(text(f"PRAGMA table_info({table})"))]
    return (f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) SELECT "
            + ", ".join(f"'{value}'" if c == column else c for c in cols) + f" FROM {table}")


def test_no_statement_gets_around_the_append_only_tables(store_url):
    """SQLite's INSERT OR REPLACE deletes without firing DELETE triggers; PostgreSQL's TRUNCATE fires no row
    triggers. Neither may rewrite or empty reviews, items or quiz answers."""
    store.record_review(upload(12), "dr. a", "agree")
    code, _, _ = make_quiz(store_url)
    ann = quizzes.join(code, "Ann")
    quizzes.record_answer(code, "Ann", ann, 0, 1, 4)
    eng = db.engine(store_url)
    for sql in ("UPDATE quiz_answers SET answer = 0", "DELETE FROM quiz_answers"):
        with pytest.raises(DBAPIError, match="append-only"), eng.begin() as conn:
            conn.execute(text(sql))
    if eng.dialect.name == "sqlite":
        with eng.connect() as conn:
            attempts = [_copy_with("reviews", "decision", "disagree", conn),
                        _copy_with("review_items", "name", "replaced", conn),
                        _copy_with("quiz_answers", "confidence", "1", conn),
                        "REPLACE INTO reviews SELECT * FROM reviews"]
        for sql in attempts:
            try:
                with eng.begin() as conn:
                    conn.execute(text(sql))
            except DBAPIError as exc:
                assert "append-only" in str(exc)
    else:
        for table in ("reviews", "review_items", "quiz_answers"):
            with pytest.raises(DBAPIError, match="append-only"), eng.begin() as conn:
                conn.execute(text(f"TRUNCATE {table} CASCADE"))
    reviews = store.reviews_frame(current_only=False)
    assert reviews["decision"].tolist() == ["agree"] and reviews["name"].tolist() != ["replaced"]
    assert {a.confidence for a in quizzes.answers(code, "Ann").values()} == {4}


def test_queue_hides_other_readers_decisions(store_url):
    hot, flagged, calm = upload(7, p=0.9), upload(8, p=0.45, needs_review=True), upload(9, p=0.1)
    ids = store.add_items([hot, flagged, calm])
    assert store.queue("dr. a")["item_id"].tolist() == ids[:2]  # calm is not in the queue
    store.record_review(ids[0], "dr. b", "disagree")
    mine = store.queue("dr. a")
    assert mine["item_id"].tolist() == ids[:2] and mine["reviews"].tolist() == [1, 0]
    assert "decision" not in mine.columns and mine["my_decision"].tolist() == ["", ""]
    store.record_review(ids[0], "dr. a", "agree")
    assert store.queue("dr. a")["item_id"].tolist() == [ids[1]]
    assert store.queue("dr. a", status="done")["my_decision"].tolist() == ["agree"]
    assert store.queue("dr. a", status="others")["item_id"].tolist() == [ids[0]]
    assert store.queue("dr. a", source="dataset").empty
    assert store.progress("dr. a") == {"queued": 2, "done": 1, "pending": 1}


def test_export_has_the_audit_columns_provenance_and_the_disclaimer(store_url):
    from app.store.audit_csv import read_csv_export
    from model_training.bundle.disclaimer import DISCLAIMER

    store.record_review(upload(10), "=dr. a", "agree", "@comment")
    data = store.export_csv(store.reviews_frame())
    assert data.decode().splitlines()[0].endswith(",notice") and DISCLAIMER in data.decode().splitlines()[1]
    df = read_csv_export(data)
    assert list(df.columns) == store.EXPORT_COLUMNS and len(df) == 1
    row = df.iloc[0]
    assert row["reviewer"] == "'=dr. a" and row["comment"] == "'@comment"
    assert row["file"] == "t10.tif" and row["source"] == "upload" and row["pixel_sha256"] == store.pixel_sha256(tile(10))
    assert row["timestamp"].endswith("+00:00")


def test_an_unreachable_store_is_a_message_with_the_password_masked():
    from app.store import service

    url = "postgresql+psycopg://reader:s3cret@127.0.0.1:1/reviews"
    status = service.open_store(url)
    assert not status.ok and "s3cret" not in status.message
    assert status.message.startswith("The review store at postgresql+psycopg://reader:***@127.0.0.1:1/reviews "
                                     "cannot be reached: ")
    assert status.message.endswith("reviews are disabled.")
    service.forget()
    db.dispose_all()
