"""The record of slide-level sign-outs as CSV: every sign-out the store holds (it keeps them all), oldest first,
each with the case it was made on (the slide file and its sha256, the model and what it answered). The lab's
record of who signed out which slide, and what the model had said; the Cases page and
``python -m app.store export-signouts`` write it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from app.store import db
from app.store.case_schema import ScoredSlide, SlideSignOut
from app.store.export import utc_text
from model_training.bundle.disclaimer import DISCLAIMER
from model_training.data.spreadsheet import csv_bytes

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

COLUMNS = ["signout_id", "signed_out_at", "case_id", "slide", "call", "comment", "reviewer", "reviewer_verified",
           "reviewer_subject", "current", "slide_score", "model_decision", "threshold", "truth", "slide_sha256",
           "path", "model", "model_sha256", "engine", "tiles_scored", "tiles_flagged", "scored_at"]


def signout_history(case_id: int | None = None, *, url: str | None = None) -> pd.DataFrame:
    """Every sign-out (of case ``case_id`` alone, when given), oldest first, in ``COLUMNS``; ``current`` marks each
    case's latest, which sets its status. ``slide_score`` and ``model_decision`` are what the worklist showed when
    the call was made."""
    import pandas as pd

    query = (select(SlideSignOut, ScoredSlide).join(ScoredSlide, ScoredSlide.id == SlideSignOut.slide_id)
             .order_by(SlideSignOut.id))
    if case_id is not None:
        query = query.where(SlideSignOut.slide_id == int(case_id))
    with db.session(url) as s:
        rows = s.execute(query).all()
        latest = {so.slide_id: so.id for so, _ in rows}
        records = [{
            "signout_id": so.id, "signed_out_at": utc_text(so.created_at), "case_id": case.id, "slide": case.slide,
            "call": so.call, "comment": so.comment, "reviewer": so.reviewer,
            "reviewer_verified": bool(so.reviewer_verified), "reviewer_subject": so.reviewer_subject or "",
            "current": latest[so.slide_id] == so.id, "slide_score": so.slide_score, "model_decision": so.model_decision,
            "threshold": case.threshold, "truth": case.truth, "slide_sha256": case.sha256, "path": case.path,
            "model": case.model, "model_sha256": case.model_sha256, "engine": case.engine,
            "tiles_scored": case.tiles_scored, "tiles_flagged": case.tiles_flagged,
            "scored_at": utc_text(case.created_at)} for so, case in rows]
    frame = pd.DataFrame(records, columns=COLUMNS)
    return frame.astype({"truth": "Int64", "tiles_flagged": "Int64"})


def signouts_csv(frame: pd.DataFrame) -> bytes:
    """``signout_history`` as CSV bytes (text cells guarded against spreadsheet formulas), with the research-use
    notice."""
    return csv_bytes(frame, f"{DISCLAIMER} PathReview slide-level sign-outs.")
