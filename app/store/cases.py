"""Cases in the review store: slides a batch run scored (added from its output folder) and slide-level
sign-outs. Pages call these functions and never write SQL; both tables are append-only."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from app.store import db
from app.store.case_schema import CALLS, ScoredSlide, SlideSignOut
from app.store.items import StoreError
from app.store.reviews import Reviewer, ReviewRefused, _reviewer, clean_text
from app.store.schema import utcnow
from model_training.slides.cases_csv import CASES_FILE, read_cases
from model_training.slides.tiles_csv import read_tiles

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

STATUSES = ("new", "in review", "signed out")
CALL_NAMES = {"metastasis": "metastasis", "no_metastasis": "no metastasis", "defer": "defer"}


def _key(sha256: str, summary: dict) -> str:
    ident = json.dumps({"sha256": sha256, "settings": summary.get("settings")}, sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()


def add_batch(out_dir: str | Path, truth: dict[str, int] | None = None, *, url: str | None = None) -> dict:
    """Add the slides of a batch run's ``cases.csv`` (scored or skipped as already done) to the store; a slide
    already there with the same file and settings is kept as it is. ``{"added", "already", "not_scored"}``."""
    out_dir = Path(out_dir)
    table = out_dir / CASES_FILE
    if not table.is_file():
        raise StoreError(f"{out_dir}: no {CASES_FILE}; run python -m model_training.cli.slides ... --out {out_dir}")
    res = {"added": 0, "already": 0, "not_scored": []}
    truth = truth or {}
    for row in read_cases(table).to_dict("records"):
        if row["status"] not in ("scored", "skipped"):
            res["not_scored"].append(f"{row['slide']}: {row['status']}")
            continue
        summary = json.loads((out_dir / f"{row['slide']}.summary.json").read_text())
        if summary.get("slide_sha256", row["sha256"]) != row["sha256"]:  # older outputs do not record it
            res["not_scored"].append(f"{row['slide']}: its outputs were made from another file than the one "
                                     f"cases.csv names (sha256 {str(row['sha256'])[:12]}…); score it again")
            continue
        tiles = (out_dir / f"{row['slide']}.tiles.csv").read_bytes()
        level = summary.get("slide_level") or {}
        rec = {"key": _key(row["sha256"], summary), "created_at": utcnow(), "slide": row["slide"],
               "path": str(row["path"]), "sha256": row["sha256"], "model": summary.get("model"),
               "model_sha256": summary["model_sha256"], "engine": (summary.get("settings") or {}).get("engine"),
               "slide_score": level.get("slide_score"), "decision": level.get("decision"),
               "threshold": level.get("threshold"), "tiles_scored": int(summary["tiles_scored"]),
               "tiles_flagged": level.get("tiles_flagged"), "truth": truth.get(row["slide"]),
               "summary_json": json.dumps(summary), "tiles_csv_gz": gzip.compress(tiles, 6)}
        with db.session(url, write=True) as s:
            if s.scalar(select(ScoredSlide.id).where(ScoredSlide.key == rec["key"])) is not None:
                res["already"] += 1
                continue
            s.add(ScoredSlide(**rec))
        res["added"] += 1
    return res


def status_of(call: str | None) -> str:
    """A case's status from its latest sign-out's call: new (none), in review (deferred), signed out."""
    return "new" if call is None else ("in review" if call == "defer" else "signed out")


def case_status(slide_id: int, *, url: str | None = None) -> str:
    """One case's status, from its latest sign-out alone (the worklist's rule, without building the worklist)."""
    with db.session(url) as s:
        call = s.scalar(select(SlideSignOut.call).where(SlideSignOut.slide_id == int(slide_id))
                        .order_by(SlideSignOut.id.desc()).limit(1))
    return status_of(call)


def _latest_signouts(s):
    last = select(SlideSignOut.slide_id, func.max(SlideSignOut.id).label("id")).group_by(SlideSignOut.slide_id)
    return last.subquery()


def worklist(*, url: str | None = None) -> pd.DataFrame:
    """The latest scoring of each slide file and model, with its status: new (no sign-out), in review (deferred
    so far), signed out (latest call metastasis / no metastasis). Slides the model gives no decision on come
    first (it cannot triage them, so they must not sink to the bottom), then the highest slide score."""
    import pandas as pd

    cols = ["id", "slide", "slide_score", "decision", "tiles_scored", "tiles_flagged", "truth", "model", "path",
            "created_at", "status", "call", "reviewer", "comment"]
    with db.session(url) as s:
        newest = (select(func.max(ScoredSlide.id)).group_by(ScoredSlide.sha256, ScoredSlide.model_sha256))
        slides = s.execute(select(ScoredSlide.id, ScoredSlide.slide, ScoredSlide.slide_score, ScoredSlide.decision,
                                  ScoredSlide.tiles_scored, ScoredSlide.tiles_flagged, ScoredSlide.truth,
                                  ScoredSlide.model, ScoredSlide.path, ScoredSlide.created_at)
                           .where(ScoredSlide.id.in_(newest))).all()
        last = _latest_signouts(s)
        signed = {r.slide_id: r for r in s.execute(
            select(SlideSignOut.slide_id, SlideSignOut.call, SlideSignOut.reviewer, SlideSignOut.comment)
            .join(last, last.c.id == SlideSignOut.id)).all()}
    rows = []
    for r in slides:
        so = signed.get(r.id)
        rows.append({**r._asdict(), "status": status_of(so.call if so else None), "call": so.call if so else None,
                     "reviewer": so.reviewer if so else None, "comment": so.comment if so else None})
    frame = pd.DataFrame(rows, columns=cols)
    order = frame.assign(answered=frame.decision.notna())
    order = order.sort_values(["answered", "slide_score", "id"], ascending=[True, False, True], na_position="last",
                              kind="stable")
    return frame.loc[order.index].reset_index(drop=True)


def get_case(slide_id: int, *, url: str | None = None) -> dict | None:
    """A stored case: its row (without the blobs), its ``summary`` and its ``tiles`` frame (as scored: see
    ``model_training.slides.tiles_csv``)."""
    with db.session(url) as s:
        r = s.get(ScoredSlide, int(slide_id))
        if r is None:
            return None
        out = {c: getattr(r, c) for c in ("id", "slide", "path", "sha256", "model", "model_sha256", "engine",
                                           "slide_score", "decision", "threshold", "tiles_scored", "tiles_flagged",
                                           "truth", "created_at")}
        out["summary"] = json.loads(r.summary_json)
        out["tiles"] = read_tiles(io.BytesIO(gzip.decompress(r.tiles_csv_gz)))
    return out


def case_of_file(path: str | Path, model_sha256: str, *, url: str | None = None) -> int | None:
    """The id of the newest stored case of the slide file at ``path`` scored by this model, or None."""
    path = Path(path).resolve()
    with db.session(url) as s:
        rows = s.execute(select(ScoredSlide.id, ScoredSlide.path)
                         .where(ScoredSlide.model_sha256 == model_sha256,
                                ScoredSlide.path.endswith(path.name, autoescape=True))
                         .order_by(ScoredSlide.id.desc())).all()
    return next((r.id for r in rows if Path(r.path).resolve() == path), None)


def record_signout(slide_id: int, reviewer: Reviewer | str, call: str, comment: str = "", *,
                   url: str | None = None) -> int:
    """Record a slide-level sign-out (metastasis / no_metastasis / defer) of a stored case; its id."""
    who = _reviewer(reviewer)
    if call not in CALLS:
        raise ReviewRefused(f"The sign-out must be one of {', '.join(CALLS)}, got {call!r}.")
    with db.session(url, write=True) as s:
        case = s.get(ScoredSlide, int(slide_id))
        if case is None:
            raise ReviewRefused(f"There is no case #{slide_id} in the store.")
        row = SlideSignOut(slide_id=case.id, created_at=utcnow(), reviewer=who.name, reviewer_verified=who.verified,
                           reviewer_subject=who.subject, call=call, comment=clean_text(comment),
                           slide_score=case.slide_score, model_decision=case.decision)
        s.add(row)
        s.flush()
        return row.id


def signouts_frame(*, url: str | None = None) -> pd.DataFrame:
    """Every reviewer's latest sign-out of each case, with the model that scored the case, its decision and the
    truth where known."""
    import pandas as pd

    cols = ["slide_id", "slide", "model", "reviewer", "call", "model_decision", "slide_score", "truth", "created_at"]
    with db.session(url) as s:
        rows = s.execute(select(SlideSignOut.id, SlideSignOut.slide_id, ScoredSlide.slide, ScoredSlide.model,
                                SlideSignOut.reviewer,
                                SlideSignOut.reviewer_verified, SlideSignOut.reviewer_subject, SlideSignOut.call,
                                SlideSignOut.model_decision, SlideSignOut.slide_score, ScoredSlide.truth,
                                SlideSignOut.created_at)
                         .join(ScoredSlide, ScoredSlide.id == SlideSignOut.slide_id)
                         .order_by(SlideSignOut.id)).all()
    latest: dict[tuple, dict] = {}
    for r in rows:  # a later sign-out of the same reviewer and case replaces the earlier one here
        who = (r.reviewer_verified, r.reviewer_subject if r.reviewer_verified else r.reviewer)
        latest[(r.slide_id, who)] = {c: getattr(r, c) for c in cols}
    return pd.DataFrame(list(latest.values()), columns=cols)
