"""Nothing lost: a process recording reviews killed with SIGKILL leaves every committed review whole and no
half-written row, on SQLite and on a real PostgreSQL server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app import store
from app.store import db, service

ROOT = Path(__file__).resolve().parent.parent
COMMENT = "reactive follicle, " * 100  # long rows: a torn write would show as a short comment

WRITER = """
import sys, numpy as np
from app import store
url = sys.argv[1]
assert store.open_store(url).ok
rng = np.random.default_rng(0)
for i in range(100000):
    tile = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    item = store.ItemIn.from_tile(tile, source="upload", name=f"k{i}.tif", upload_name=f"k{i}.tif",
                                  model_sha256="cd" * 32, p=0.9, spread=0.01, threshold=0.5)
    rid = store.record_review(item, f"reader {i % 3}", "agree", sys.argv[2] + str(i), url=url)
    print(rid, i, flush=True)  # only after the commit returned
"""


def test_kill_9_while_recording_keeps_every_committed_review(store_url):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, store_url, COMMENT], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    committed: dict[int, int] = {}
    t0 = time.time()
    try:
        while len(committed) < 40:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"the writer stopped: {proc.stderr.read()[-2000:]}")
            rid, i = map(int, line.split())
            committed[rid] = i
            assert time.time() - t0 < 120
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-way through the next review, most likely inside a transaction
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for line in proc.stdout.read().split("\n"):  # ids printed before the kill but not read yet
        if line.strip():
            rid, i = map(int, line.split())
            committed[rid] = i

    db.dispose_all()
    service.forget()
    assert store.open_store(store_url).ok  # the next start recovers and migrates (nothing to do)
    if store_url.startswith("sqlite"):
        with db.engine(store_url).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    rows = store.reviews_frame(url=store_url).set_index("review_id")
    assert set(committed) <= set(rows.index)  # every committed review is there
    assert len(rows) - len(committed) <= 1  # at most the one whose commit had not returned yet
    for rid, row in rows.iterrows():
        i = int(row["name"][1:-4])
        assert row["comment"] == COMMENT + str(i) and row["reviewer"] == f"reader {i % 3}"
        assert row["upload_name"] == row["name"] and len(row["pixel_sha256"]) == 64
    with db.engine(store_url).connect() as conn:  # no item without its review, no review without its item
        orphans = conn.execute(text("SELECT count(*) FROM review_items i WHERE NOT EXISTS "
                                    "(SELECT 1 FROM reviews r WHERE r.item_id = i.id)")).scalar()
    assert orphans <= 1  # an item queued just before the kill, whose review never committed
