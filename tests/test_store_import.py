"""import-audit: an audit CSV of earlier versions goes into the store once, with its rows intact."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from app import store
from app.store import audit_csv

ROOT = Path(__file__).resolve().parent.parent


def test_import_audit_once(store_url, tmp_path):
    log = tmp_path / "pathreview_audit.csv"
    tiles = [np.full((96, 96, 3), v, np.uint8) for v in (10, 20)]
    audit_csv.append(audit_csv.make_row(file="a.tif", tile=tiles[0], model_sha256="ab" * 32, threshold=0.4, p=0.8,
                                spread=0.01, review="agree", reviewer="dr. a", comment="clear"), log)
    audit_csv.append(audit_csv.make_row(file="b.tif", tile=tiles[1], model_sha256="ab" * 32, threshold=0.4, p=0.2,
                                spread=0.2, review="disagree", reviewer="", comment="=odd"), log)
    audit_csv.append(audit_csv.make_row(file="a2.tif", tile=tiles[0], model_sha256="ab" * 32, threshold=0.4, p=0.8,
                                spread=0.01, review="unsure", reviewer="dr. a", comment="second look"), log)
    with open(log, "a") as fh:
        fh.write("not-a-time,dr. c,c.tif,x,y,nan,0.5,0,tumour,agree,\n")
    cmd = [sys.executable, "-m", "app.store", "--db", store_url, "import-audit", str(log)]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1 and "3 review(s) imported, 0 already there, 1 row(s) with problems" in first.stdout
    assert f"{log}:5:" in first.stderr
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "0 review(s) imported, 3 already there" in again.stdout

    rows = store.reviews_frame(url=store_url)
    assert rows["reviewer"].tolist() == ["unnamed (imported)", "dr. a"]
    assert rows["pixel_sha256"].tolist() == [store.pixel_sha256(t) for t in tiles[::-1]]
    assert rows["decision"].tolist() == ["disagree", "unsure"] and rows["comment"].tolist() == ["'=odd", "second look"]
    assert rows["supersedes_id"].iloc[1] == 1  # the second look corrects dr. a's first review
    assert rows["created_at"].notna().all() and rows["source"].tolist() == ["upload", "upload"]
    out = subprocess.run([sys.executable, "-m", "app.store", "--db", store_url, "export"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "Research use only" in out.stdout.splitlines()[1] and out.stdout.count("\n") == 3


def test_the_scorer_of_a_review_survives_export_and_import(store_url, tmp_path):
    """Which engine gave the P a reviewer saw (the app's int8 copy, model.onnx or Keras) is kept by the store,
    written by the export and read back by the import; logs that do not say leave it empty."""
    tile = np.full((96, 96, 3), 30, np.uint8)
    item = store.ItemIn.from_tile(tile, source="upload", name="c.tif", upload_name="c.tif", model_sha256="cd" * 32,
                                  p=0.7, spread=0.02, threshold=0.185)
    store.record_review(item, "dr. b", "agree", seen=store.Seen(0.71, 0.02, 0.185, scorer="onnx-int8"),
                        url=store_url)
    store.record_review(item, "dr. c", "unsure", url=store_url)  # the item's own scores: no engine given
    rows = store.reviews_frame(url=store_url)
    assert rows["scorer"].fillna("").tolist() == ["onnx-int8", ""]
    log = tmp_path / "export.csv"
    log.write_bytes(store.export_csv(rows))
    exported = audit_csv.read_csv_export(log.read_bytes())
    assert exported["scorer"].tolist() == ["onnx-int8", ""]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert store.open_store(other).ok
    from app.store.importer import import_audit

    assert import_audit(log, url=other)["imported"] == 2
    assert store.reviews_frame(url=other)["scorer"].fillna("").tolist() == ["onnx-int8", ""]
