"""Teaching quizzes without a model: tile selection, the quiz tables on SQLite and PostgreSQL, reader metrics,
the shared feedback cache and the class export."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pandas as pd
import pytest

from app.quiz import reader_metrics, selection
from app.quiz.feedback import OnceCache
from app.store import db, migrate, quizzes

MODEL = "cd" * 32


def pool(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    p = np.clip(labels * 0.5 + rng.normal(0.25, 0.2, n), 0, 1)
    return pd.DataFrame({"id": [f"t{i:04d}" for i in range(n)], "label": labels, "p": p})


# --- selection ------------------------------------------------------------------------------------------------
def test_same_settings_give_the_same_tiles_in_the_same_order():
    a = selection.choose(pool(), 20, 0.5, hard=False, seed=7, threshold=0.4)
    b = selection.choose(pool().sample(frac=1, random_state=1), 20, 0.5, hard=False, seed=7, threshold=0.4)
    assert list(a["id"]) == list(b["id"])  # the pool's order does not matter
    c = selection.choose(pool(), 20, 0.5, hard=False, seed=8, threshold=0.4)
    assert list(c["id"]) != list(a["id"])


@pytest.mark.parametrize("size,balance", [(20, 0.5), (10, 0.3), (7, 1.0), (5, 0.0)])
def test_class_balance(size, balance):
    got = selection.choose(pool(), size, balance, hard=False, seed=0, threshold=0.4)
    assert len(got) == size and got["id"].is_unique
    assert int(got["label"].sum()) == round(size * balance)


def test_hard_selection_takes_what_the_model_got_wrong_or_was_unsure_about():
    df, thr = pool(), 0.4
    hard = selection.hard_mask(df["label"], df["p"], thr)
    assert 20 < hard.sum() < len(df) - 20
    got = selection.choose(df, 20, 0.5, hard=True, seed=0, threshold=thr)
    assert selection.hard_mask(got["label"], got["p"], thr).all()
    easy = selection.choose(df, 20, 0.5, hard=False, seed=0, threshold=thr)
    assert selection.hard_mask(easy["label"], easy["p"], thr).mean() < 1
    # fewer hard tiles than asked for: all of them, then the others
    few = df[~hard | (df.index < 50)]
    n_hard = int(selection.hard_mask(few["label"], few["p"], thr)[few["label"].to_numpy() == 1].sum())
    got = selection.choose(few, 2 * n_hard + 10, 0.5, hard=True, seed=0, threshold=thr)
    pos = got[got["label"] == 1]
    assert int(selection.hard_mask(pos["label"], pos["p"], thr).sum()) == n_hard


def test_a_pool_too_small_is_refused_with_the_reason():
    with pytest.raises(selection.SelectionError, match="tumour tiles"):
        selection.choose(pool(10), 20, 1.0, hard=False, seed=0, threshold=0.5)


def test_candidate_pool_scores_only_what_the_bundle_did_not():
    ids, labels = [f"t{i}" for i in range(6)], np.array([0, 1, 0, 1, -1, 1])
    scores = pd.DataFrame({"id": ["t0", "t1", "t2"], "p": [0.1, 0.9, 0.2]})
    asked = []

    def score(missing):
        asked.extend(missing)
        return np.full(len(missing), 0.5)
    got = selection.candidate_pool(ids, labels, scores, score)
    assert sorted(asked) == ["t3", "t5"]  # t4 is unlabelled
    assert list(got["id"]) == ["t0", "t1", "t2", "t3", "t5"] and got["p"].notna().all()
    assert list(selection.candidate_pool(ids, labels, scores)["id"]) == ["t0", "t1", "t2"]


# --- the store ------------------------------------------------------------------------------------------------
def make_quiz(url=None, n: int = 4) -> tuple[str, str, list[quizzes.TileIn]]:
    tiles = [quizzes.TileIn(f"id{i}", i % 2, 0.1 + 0.2 * i) for i in range(n)]
    spec = quizzes.QuizSpec("examples", "/somewhere/examples", "test tiles", n, 0.5, False, 0, MODEL, 0.5, "T")
    code, key = quizzes.create_quiz(spec, tiles, url=url)
    return code, key, tiles


def test_migration_0002_adds_the_quiz_tables_and_goes_back(store_url):
    eng = db.engine(store_url)
    assert migrate.current(eng) == migrate.head() == "0006"
    migrate.upgrade(eng, "0001")  # no-op: upgrade does not go down
    from alembic import command

    with eng.connect() as conn:
        command.downgrade(migrate.config(conn), "0001")
        conn.commit()
    assert migrate.current(eng) == "0001"
    migrate.upgrade(eng)
    assert migrate.current(eng) == "0006"
    code, _, _ = make_quiz(store_url)
    assert quizzes.get_quiz(code, url=store_url) is not None


def test_a_quiz_keeps_its_tiles_in_order_and_students_see_no_truth(store_url):
    code, key, tiles = make_quiz()
    assert len(code) == quizzes.CODE_LENGTH and set(code) <= set(quizzes.CODE_ALPHABET)
    quiz = quizzes.get_quiz(code.lower() + " ")  # typed codes are forgiving
    assert quiz.tile_ids == tuple(t.dataset_id for t in tiles) and quiz.size == 4
    assert not {"label", "p"} & set(quiz.__dataclass_fields__)
    assert quizzes.get_quiz("NOSUCH") is None


def test_answers_are_stored_once_and_revealed_only_when_answered(store_url):
    code, teacher, tiles = make_quiz()
    ann = quizzes.join(code, "  Ann  ")
    assert quizzes.reveal(code, "Ann", 0) is None and quizzes.revealed(code, "Ann") == []
    first = quizzes.record_answer(code, "Ann", ann, 0, 1, 4, seconds=3.5)
    again = quizzes.record_answer(code, "Ann", ann, 0, 0, 1)  # a double click or a second tab
    assert again == first and (first.answer, first.confidence) == (1, 4)
    assert list(quizzes.answers(code, "Ann")) == [0]
    rev = quizzes.reveal(code, "Ann", 0)
    assert (rev.label, rev.answer, rev.dataset_id) == (tiles[0].label, 1, "id0")
    assert rev.p == pytest.approx(tiles[0].p)
    assert quizzes.reveal(code, "Ann", 1) is None
    assert quizzes.reveal(code, "Bob", 0) is None  # another student's answer reveals nothing to Bob
    frame, names = quizzes.class_frame(code, teacher)
    assert names == ["Ann"] and len(frame) == 1 and frame.loc[0, "seconds"] == pytest.approx(3.5)


def test_names_keys_and_bad_answers_are_refused(store_url):
    code, teacher, _ = make_quiz()
    ann = quizzes.join(code, "Ann")
    assert quizzes.join(code, "Ann", ann) == ann  # a reload with the key continues
    with pytest.raises(quizzes.QuizRefused, match="already taken in this quiz. If it is yours, open the address"):
        quizzes.join(code, "Ann")
    with pytest.raises(quizzes.QuizRefused, match="display name"):
        quizzes.join(code, "   ")
    with pytest.raises(quizzes.QuizRefused, match="no quiz"):
        quizzes.join("ZZZZZZ", "Ann")
    with pytest.raises(quizzes.QuizRefused, match="has not joined"):
        quizzes.record_answer(code, "Ann", "wrong key", 0, 1, 3)
    with pytest.raises(quizzes.QuizRefused, match="no tile 5"):
        quizzes.record_answer(code, "Ann", ann, 4, 1, 3)
    with pytest.raises(quizzes.QuizRefused, match="1 to 5"):
        quizzes.record_answer(code, "Ann", ann, 0, 1, 6)
    with pytest.raises(quizzes.QuizRefused, match="teacher key"):
        quizzes.class_frame(code, ann)
    with pytest.raises(quizzes.QuizRefused, match="teacher key"):
        quizzes.quiz_key(code, "")
    assert quizzes.teacher_ok(code, teacher) and not quizzes.teacher_ok(code, ann)
    key = quizzes.quiz_key(code, teacher)
    assert list(key["position"]) == [0, 1, 2, 3] and list(key["label"]) == [0, 1, 0, 1]


def test_concurrent_double_submissions_record_one_answer(store_url):
    code, teacher, _ = make_quiz()
    keys = {f"s{i}": quizzes.join(code, f"s{i}") for i in range(6)}
    errors = []

    def answer(name):
        try:
            for _ in range(2):
                quizzes.record_answer(code, name, keys[name], 1, 1, 3)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=answer, args=(n,)) for n in keys for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    frame, names = quizzes.class_frame(code, teacher)
    assert len(frame) == 6 and sorted(names) == sorted(keys)


# --- metrics, cache, export -----------------------------------------------------------------------------------
def test_reader_sensitivity_and_specificity():
    m = reader_metrics.reader_point([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1, 0])
    assert (m["tp"], m["fn"], m["tn"], m["fp"], m["correct"], m["n"]) == (2, 1, 3, 1, 5, 7)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(3 / 4)
    none = reader_metrics.reader_point([0, 0], [0, 1])
    assert math.isnan(none["sensitivity"]) and none["specificity"] == 0.5


def test_class_tables_and_the_roc_with_readers():
    key = pd.DataFrame({"position": [0, 1, 2, 3], "dataset_id": list("abcd"), "label": [1, 0, 1, 0],
                        "p": [0.9, 0.6, 0.3, 0.1]})
    frame = pd.DataFrame({"student": ["A"] * 4 + ["B"] * 2, "position": [0, 1, 2, 3, 0, 1],
                          "answer": [1, 0, 0, 0, 0, 1], "confidence": [5, 4, 3, 2, 1, 1]})
    frame = frame.merge(key, on="position")
    students = reader_metrics.per_student(frame, ["A", "B", "C"])
    assert list(students["answered"]) == [4, 2, 0] and list(students["correct"]) == [3, 0, 0]
    assert students.loc[0, "sensitivity"] == 0.5 and students.loc[0, "specificity"] == 1.0
    tiles = reader_metrics.per_tile(key, frame, 0.5)
    assert list(tiles["answered"]) == [2, 2, 1, 1] and list(tiles["right"]) == [1, 1, 0, 1]
    assert list(tiles["model"]) == ["tumour", "tumour", "no tumour", "no tumour"]
    assert list(reader_metrics.hardest(tiles, 2)["position"]) == [2, 0]
    fig = reader_metrics.roc_with_readers(key["label"], key["p"], 0.5, students)
    readers = next(t for t in fig.data if t.name == "readers")
    assert list(readers.text) == ["A", "B"]  # C answered nothing: no point
    assert list(readers.y) == [0.5, 0.0] and list(readers.x) == [0.0, 1.0]


def test_once_cache_computes_a_missing_key_once_for_concurrent_callers():
    cache, calls = OnceCache(2), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "view"
    out = []
    threads = [threading.Thread(target=lambda: out.append(cache.get("k", slow))) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert out == ["view"] * 8 and len(calls) == 1
    cache.get("a", lambda: 1), cache.get("b", lambda: 2)
    assert cache.get("k", lambda: "again") == "again"  # evicted (LRU of 2)
    with pytest.raises(ZeroDivisionError):
        cache.get("bad", lambda: 1 / 0)
    assert cache.get("bad", lambda: "retried") == "retried"


def test_class_export_has_the_disclaimer_and_guards_formulas():
    from app.quiz.classroom import EXPORT_COLUMNS, class_csv

    info = quizzes.QuizInfo("ABC234", None, "T", "examples", "/x", "test tiles", 0.5, False, 0, MODEL, 0.5,
                            ("a", "b"))
    frame = pd.DataFrame({"student": ["=cmd", "Bo"], "position": [0, 1], "dataset_id": ["a", "b"],
                          "label": [1, 0], "p": [0.7, 0.6], "answer": [1, 1], "confidence": [3, 2],
                          "seconds": [1.234, None], "answered_at": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    text = class_csv(info, frame).decode()
    assert text.startswith("# Research use only") and "ABC234" in text.splitlines()[0]
    import io

    out = pd.read_csv(io.StringIO(text), comment=None, skiprows=1)
    assert list(out.columns) == EXPORT_COLUMNS
    assert list(out["student"]) == ["'=cmd", "Bo"] and list(out["correct"]) == [1, 0]
    assert list(out["model_decision"]) == ["tumour", "tumour"] and list(out["tile"]) == [1, 2]
