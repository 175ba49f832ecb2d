"""Importing an audit CSV of earlier PathReview versions into the store, once: each row becomes a review
(and its tile an upload item); a row imported before is skipped, so running it again adds nothing. A later
row of the same reviewer on the same tile supersedes the earlier one, as a correction in the app would."""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path

from app.store import db
from app.store.audit_csv import read_csv_export
from app.store.items import ItemIn, StoreError, add_item
from app.store.reviews import Reviewer, Seen, my_review, record_review
from app.store.schema import DECISIONS, Review

UNNAMED = "unnamed (imported)"  # old logs allowed an empty reviewer; the store does not


def _float(row: dict, key: str) -> float:
    v = float(row[key])
    if not math.isfinite(v):
        raise ValueError(f"{key} is not a finite number")
    return v


def import_audit(path: str | Path, *, url: str | None = None) -> dict:
    """Import the audit CSV at ``path``; ``{"imported", "skipped", "problems"}`` (problems: line: reason)."""
    path = Path(path)
    df = read_csv_export(path.read_bytes())
    missing = {"timestamp", "reviewer", "file", "pixel_sha256", "model_sha256", "threshold", "p", "tta_spread",
               "review"} - set(df.columns)
    if missing:
        raise StoreError(f"{path} is not a PathReview audit log: no column(s) {', '.join(sorted(missing))}")
    out = {"imported": 0, "skipped": 0, "problems": []}
    for n, row in enumerate(df.to_dict("records"), start=2):  # line 1 is the header
        key = hashlib.sha256("\x1f".join(str(row.get(c, "")) for c in df.columns).encode()).hexdigest()
        if _seen_before(key, url):
            out["skipped"] += 1
            continue
        try:
            if row["review"] not in DECISIONS:
                raise ValueError(f"review {row['review']!r} is not one of {', '.join(DECISIONS)}")
            p, thr, spread = _float(row, "p"), _float(row, "threshold"), _float(row, "tta_spread")
            when = dt.datetime.fromisoformat(row["timestamp"])
            name = row["file"] or "unnamed"
            item = ItemIn(source="upload", name=name, upload_name=name, pixel_sha256=row["pixel_sha256"],
                          model_sha256=row["model_sha256"], p=p, spread=spread, threshold=thr)
            who = Reviewer(row["reviewer"].strip() or UNNAMED)
            item_id = add_item(item, url=url)
            # the old log had no corrections: a later row of the same reviewer and tile supersedes the earlier
            earlier = my_review(item_id, who, url=url)
            seen = Seen(p, spread, thr, scorer=row.get("scorer") or None)  # logs before 0003 do not say
            record_review(item_id, who, row["review"], row.get("comment", ""), seen=seen, url=url,
                          import_key=key, created_at=when, supersedes=earlier["id"] if earlier else None)
            out["imported"] += 1
        except (StoreError, ValueError, KeyError) as exc:
            out["problems"].append(f"{path}:{n}: {exc}")
    return out


def _seen_before(key: str, url: str | None) -> bool:
    from sqlalchemy import select

    with db.session(url) as s:
        return s.scalar(select(Review.id).where(Review.import_key == key)) is not None
