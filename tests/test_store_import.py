"""import-audit: an audit CSV of earlier versions goes into the store once, with its rows intact."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from app import audit, store

ROOT = Path(__file__).resolve().parent.parent


def test_import_audit_once(store_url, tmp_path):
    log = tmp_path / "pathreview_audit.csv"
    tiles = [np.full((96, 96, 3), v, np.uint8) for v in (10, 20)]
    audit.append(audit.make_row(file="a.tif", tile=tiles[0], model_sha256="ab" * 32, threshold=0.4, p=0.8,
                                spread=0.01, review="agree", reviewer="dr. a", comment="clear"), log)
    audit.append(audit.make_row(file="b.tif", tile=tiles[1], model_sha256="ab" * 32, threshold=0.4, p=0.2,
                                spread=0.2, review="disagree", reviewer="", comment="=odd"), log)
    audit.append(audit.make_row(file="a2.tif", tile=tiles[0], model_sha256="ab" * 32, threshold=0.4, p=0.8,
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
    assert out.stdout.startswith("# Research use only") and out.stdout.count("\n") == 4
