"""Every CSV the project writes opens in a spreadsheet as data: no cell runs as a formula, whatever users
typed or named their files (file and member names, reviewer names, comments, quiz students)."""
from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from app import store
from app.inputs import uploads
from model_training.inference.predictor import Prediction
from app.quiz import classroom
from app.review import agreement
from app.store.quizzes import QuizInfo
from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.data.decode import read_tile
from model_training.data.sources import open_source
from model_training.data.spreadsheet import FORMULA_START, safe_cell
from model_training.evaluation.scoring import score_to_csv
from model_training.inference.predictor import Predictor

REPO = Path(__file__).resolve().parent.parent
# What the probe put in names and comments: Excel, LibreOffice and Google Sheets run each of them.
ATTACKS = ["=HYPERLINK(\"http://example.com\",\"open\")", "=cmd|' /C calc'!A0", "+SUM(1,2)", "@SUM(1,2)",
           "-2+3", "\uff1dSUM(1,2)", "\t=1+1", " =1+1"]


NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")  # a numeric column's negative value is data, not a formula


def formula_cells(data: bytes) -> list[str]:
    """The cells of a CSV that a spreadsheet would run."""
    cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8"))) for c in row]
    return [c for c in cells if c.lstrip(" ").startswith(FORMULA_START) and not NUMBER.fullmatch(c)]


def test_the_guard_quotes_formulas_and_leaves_numbers():
    assert [safe_cell(a) for a in ATTACKS] == ["'" + a for a in ATTACKS]
    assert [safe_cell(v) for v in ["-0.5", "1e-3", "normal", -7, None]] == ["'-0.5", "1e-3", "normal", -7, None]
    assert formula_cells("=1+1,ok,-2\n".encode()) == ["=1+1"]  # the checker below finds what it looks for


def test_every_csv_writer_goes_through_the_guard():
    """A ``.to_csv`` anywhere but on ``safe_frame(...)`` would be a CSV that skips it."""
    unguarded = []
    for path in [*(REPO / "app").rglob("*.py"), *(REPO / "model_training").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to_csv":
                target = node.func.value
                ok = isinstance(target, ast.Call) and getattr(target.func, "id", None) == "safe_frame"
                if not ok:
                    unguarded.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert unguarded == [], unguarded


def test_the_analyze_results_csv_names_files_as_text(data_root):
    tile = read_tile(next((data_root / "valid").glob("*.jpg")))
    records = [uploads.TileRecord(a, a, tile, "0" * 64) for a in ATTACKS]
    n = len(records)
    pred = Prediction(np.full(n, 0.7), np.zeros(n), None, np.zeros(n), 0.5)
    data = uploads.table_csv(uploads.results_table(records, pred), "a" * 64, 0.5)
    assert formula_cells(data) == []
    table = pd.read_csv(io.BytesIO(data))  # a plain table: no comment line to skip
    assert table["file"].tolist() == ["'" + a for a in ATTACKS]
    assert table["notice"].iloc[0].startswith("Research use only") and table["notice"].iloc[1:].isna().all()


def test_the_agreement_tables_and_the_review_export_keep_names_and_comments_as_text(tmp_path, data_root):
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    assert store.open_store(url).ok
    tile = read_tile(next((data_root / "valid").glob("*.jpg")))
    for i, attack in enumerate(ATTACKS):
        item = store.ItemIn.from_tile(np.roll(tile, i, axis=0), source="upload", name=attack, upload_name=attack,
                                      model_sha256="0" * 64, p=0.9, spread=0.01, threshold=0.5)
        store.record_review(item, attack, "disagree", comment=attack, url=url)
        store.record_review(item, "reader B", "agree", url=url)
    reviews = store.reviews_frame(url=url)
    exported = store.export_csv(reviews)
    assert formula_cells(exported) == []
    assert set(pd.read_csv(io.BytesIO(exported), dtype=str)["comment"].dropna()) == {
        "'" + a.strip() for a in ATTACKS}
    tables = agreement.tables_csv(agreement.vs_model(reviews), agreement.vs_truth(reviews),
                                  agreement.between_readers(reviews), agreement.fleiss_all(reviews))
    assert formula_cells(tables) == [] and "'@SUM(1,2)" in tables.decode()


def test_the_quiz_export_keeps_student_names_as_text():
    quiz = QuizInfo(code="ABC123", created_at=dt.datetime(2026, 1, 1), creator="t", source_kind="examples",
                    source_root="", description="d", balance=0.5, hard=False, seed=1, model_sha256="0" * 64,
                    threshold=0.5, tile_ids=("a",))
    frame = pd.DataFrame({"student": ATTACKS, "position": 0, "dataset_id": "a", "label": 1, "answer": 1,
                          "confidence": 3, "seconds": 1.0, "answered_at": dt.datetime(2026, 1, 1), "p": 0.7})
    assert formula_cells(classroom.class_csv(quiz, frame)) == []


def test_the_score_command_writes_file_names_as_text(data_root, tmp_path):
    folder = tmp_path / "tiles"
    folder.mkdir()
    source = next((data_root / "valid").glob("*.jpg"))
    for a in ("=HYPERLINK(1)", "+SUM(1,2)", "@SUM(1,2)", "\uff1dcmd"):
        shutil.copy(source, folder / f"{a}.jpg")
    out = tmp_path / "scores.csv"
    score_to_csv(Predictor.load(DEFAULT_BUNDLE, engine="onnx"), open_source(folder), out)
    assert formula_cells(out.read_bytes()) == []
    assert len(pd.read_csv(out)) == 4
