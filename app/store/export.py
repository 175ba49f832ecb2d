"""CSV export of reviews: the audit log's columns first, then provenance; line 1 is the research-use line."""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.store.audit_csv import COLUMNS as AUDIT_COLUMNS
from app.store.audit_csv import spreadsheet_safe
from model_training.bundle.disclaimer import DISCLAIMER
from model_training.data.spreadsheet import csv_bytes

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

PROVENANCE = ["review_id", "supersedes", "reviewer_verified", "reviewer_subject", "source", "upload_name", "dataset_root",
              "dataset_id", "slide", "x", "y", "width", "height", "label", "scorer"]
COLUMNS = AUDIT_COLUMNS + PROVENANCE


def _safe(value: object) -> str:
    """Text that a spreadsheet will not run as a formula."""
    import pandas as pd

    return spreadsheet_safe("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))


def utc_text(t) -> str:
    """ISO time in UTC; SQLite hands back the stored UTC times without their zone."""
    import pandas as pd

    ts = pd.Timestamp(t)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat(timespec="seconds")


def export_frame(reviews: pd.DataFrame) -> pd.DataFrame:
    """``reviews_frame`` rows in the export's columns."""
    import pandas as pd

    df = pd.DataFrame({
        "timestamp": [utc_text(t) for t in reviews.get("created_at", [])],
        "reviewer": reviews.get("reviewer", []), "file": reviews.get("name", []),
        "pixel_sha256": reviews.get("pixel_sha256", []), "model_sha256": reviews.get("model_sha256", []),
        "threshold": [f"{v:.6f}" for v in reviews.get("threshold", [])],
        "p": [f"{v:.6f}" for v in reviews.get("p", [])], "tta_spread": [f"{v:.6f}" for v in reviews.get("spread", [])],
        "model_decision": reviews.get("model_decision", []), "review": reviews.get("decision", []),
        "comment": reviews.get("comment", []), "review_id": reviews.get("review_id", []),
        "supersedes": [("" if pd.isna(v) else str(int(v))) for v in reviews.get("supersedes_id", [])],
        "reviewer_verified": reviews.get("reviewer_verified", []),
        "reviewer_subject": reviews.get("reviewer_subject", []), "source": reviews.get("source", []),
        "upload_name": reviews.get("upload_name", []), "dataset_root": reviews.get("dataset_root", []),
        "dataset_id": reviews.get("dataset_id", []), "slide": reviews.get("slide", []),
        "x": reviews.get("x", []), "y": reviews.get("y", []), "width": reviews.get("width", []),
        "height": reviews.get("height", []),
        "label": [("" if pd.isna(v) else str(int(v))) for v in reviews.get("label", [])],
        "scorer": reviews.get("scorer", []),
    }, columns=COLUMNS)
    for col in ("reviewer", "reviewer_subject", "file", "comment", "upload_name", "dataset_root", "dataset_id", "slide",
                "scorer"):
        df[col] = df[col].map(_safe)
    for col in ("x", "y", "width", "height"):
        df[col] = df[col].map(lambda v: "" if v is None or pd.isna(v) else str(int(v)))
    return df


def export_csv(reviews: pd.DataFrame) -> bytes:
    """The reviews as CSV bytes, line 1 the research-use disclaimer as a ``#`` comment."""
    return csv_bytes(export_frame(reviews), f"{DISCLAIMER} PathReview reviewer decisions.")
