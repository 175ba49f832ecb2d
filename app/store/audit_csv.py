"""The audit CSV format of earlier PathReview versions (one file of review rows), read by
``python -m app.store import-audit``; reviews now live in the review store (``app.store``).

Every row is written with one ``os.write`` on an ``O_APPEND`` descriptor while holding an exclusive
``flock``, so concurrent writers (several sessions, several server processes) never interleave rows and
the header is written exactly once.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from model_training.bundle.disclaimer import DISCLAIMER
from model_training.data.spreadsheet import NOTICE
from model_training.data.spreadsheet import safe_cell

try:  # POSIX; elsewhere O_APPEND alone keeps single writes whole
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

COLUMNS = ["timestamp", "reviewer", "file", "pixel_sha256", "model_sha256", "threshold", "p", "tta_spread",
           "model_decision", "review", "comment"]
REVIEWS = ("agree", "disagree", "unsure")
MAX_TEXT = 2000


def pixel_sha256(tile: np.ndarray) -> str:
    """SHA-256 of the raw uint8 RGB pixels (row-major), independent of the file format they came in."""
    return hashlib.sha256(np.ascontiguousarray(tile, dtype=np.uint8).tobytes()).hexdigest()


def spreadsheet_safe(s: str) -> str:
    """``s`` with a leading quote when a spreadsheet would otherwise run it as a formula."""
    return safe_cell(s)


def _text(value: object) -> str:
    """Free text made safe for a CSV opened in a spreadsheet: no NULs, bounded, no formula injection."""
    return spreadsheet_safe(str(value or "").replace("\x00", "").strip()[:MAX_TEXT])


def make_row(*, file: str, tile: np.ndarray, model_sha256: str, threshold: float, p: float, spread: float,
             review: str, reviewer: str = "", comment: str = "", now: dt.datetime | None = None) -> dict:
    """One audit row; the model decision is recomputed from ``p`` and ``threshold``."""
    if review not in REVIEWS:
        raise ValueError(f"review must be one of {', '.join(REVIEWS)}, got {review!r}")
    if not (math.isfinite(p) and math.isfinite(threshold)):
        raise ValueError("p and threshold must be finite numbers")
    now = now or dt.datetime.now(dt.timezone.utc)
    return {"timestamp": now.isoformat(timespec="seconds"), "reviewer": _text(reviewer), "file": _text(file),
            "pixel_sha256": pixel_sha256(tile), "model_sha256": str(model_sha256),
            "threshold": f"{float(threshold):.6f}", "p": f"{float(p):.6f}", "tta_spread": f"{float(spread):.6f}",
            "model_decision": "tumour" if p >= threshold else "normal", "review": review,
            "comment": _text(comment)}


def _lines(rows: Iterable[dict], header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def append(row: dict, path: str | Path) -> Path:
    """Append one row (and the header if the log is new) in a single locked write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        data = _lines([row], header=os.fstat(fd).st_size == 0).encode("utf-8")
        view = memoryview(data)
        while view:  # a regular-file write is whole in practice; loop for the pathological partial write
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return path


def export_csv(rows: Iterable[dict]) -> bytes:
    """The session's decisions as CSV; line 1 is the research-use disclaimer as a ``#`` comment."""
    return (f"# {DISCLAIMER} PathReview reviewer decisions.\n" + _lines(rows, header=True)).encode("utf-8")


def read_csv_export(data: bytes | str | Path):
    """Read an export or the audit log back into a DataFrame (without the audit log's disclaimer line or an
    export's ``notice`` column)."""
    import pandas as pd

    if isinstance(data, Path):
        data = data.read_bytes()
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if text.startswith("#"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return frame.drop(columns=[NOTICE], errors="ignore")
