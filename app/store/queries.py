"""Reading the store: the review queue of one reviewer, and the reviews with their provenance as a frame."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from app.store import db
from app.store.reviews import Reviewer, _superseded, as_reviewer, by, stored_reviewer
from app.store.schema import Item, Review

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

STATUSES = ("pending", "done", "others", "all")
ITEM_COLUMNS = ["item_id", "name", "source", "upload_name", "dataset_root", "dataset_id", "slide", "x", "y",
                "width", "height", "item_p", "item_spread", "item_threshold", "item_model_decision",
                "needs_review", "label", "queued_at", "item_quality"]
REVIEW_COLUMNS = ["review_id", "created_at", "reviewer", "reviewer_verified", "reviewer_subject", "decision",
                  "comment", "pixel_sha256", "model_sha256", "threshold", "p", "spread", "model_decision",
                  "supersedes_id", "superseded", "scorer"]


def _needs_a_look():
    """Why an item is in the queue: the model calls it tumour, or flagged it for review."""
    return or_(Item.model_decision == "tumour", Item.needs_review.is_(True))


def reviews_frame(*, reviewer: Reviewer | str | None = None, current_only: bool = True, source: str | None = None,
                  url: str | None = None) -> pd.DataFrame:
    """One row per review with its item's provenance; ``current_only`` drops superseded reviews, ``reviewer``
    keeps one reviewer's (a typed name, or a ``Reviewer``: a signed-in one is matched by provider subject).

    ``reviewer`` in the frame is who it was, as shown: two identities showing the same name (a typed name and
    a signed-in account, or two accounts) get their subject appended, so that no table merges them."""
    import pandas as pd

    sup = _superseded()
    q = (select(Review.id, Review.created_at, Review.reviewer, Review.reviewer_verified, Review.reviewer_subject,
                Review.decision, Review.comment, Review.pixel_sha256, Review.model_sha256, Review.threshold,
                Review.p, Review.spread, Review.model_decision, Review.supersedes_id, sup, Review.scorer,
                Item.id, Item.name, Item.source, Item.upload_name, Item.dataset_root, Item.dataset_id, Item.slide,
                Item.x, Item.y, Item.width, Item.height, Item.p, Item.spread, Item.threshold,
                Item.model_decision, Item.needs_review, Item.label, Item.created_at, Item.quality)
         .join(Item, Review.item_id == Item.id).order_by(Review.id))
    if current_only:
        q = q.where(~sup)
    if reviewer is not None:
        q = q.where(by(as_reviewer(reviewer)))
    if source:
        q = q.where(Item.source == source)
    with db.session(url) as s:
        rows = s.execute(q).all()
    df = pd.DataFrame(rows, columns=REVIEW_COLUMNS + ITEM_COLUMNS)
    if not len(df):
        return df
    df = df.astype({"superseded": bool, "reviewer_verified": bool, "needs_review": bool})
    return df.assign(reviewer=_distinct_names(df))


def _distinct_names(df: pd.DataFrame) -> list[str]:
    """Each review's reviewer as shown, made distinct between identities that show the same name."""
    who = [stored_reviewer(r) for r in df.itertuples()]
    identities: dict[str, set] = {}
    for r in who:
        identities.setdefault(r.name, set()).add(r.key)
    return [r.name if len(identities[r.name]) == 1 else f"{r.name} [{r.account or 'typed name'}]" for r in who]


def queue(reviewer: Reviewer | str, *, status: str = "pending", source: str | None = None,
          url: str | None = None) -> pd.DataFrame:
    """Items for ``reviewer``: ``pending`` (need a look, not yet reviewed by them), ``done`` (reviewed by
    them), ``others`` (reviewed by someone else) or ``all``.

    Columns: the item's fields (no ground truth and no pixels), ``reviews`` (how many readers reviewed it),
    ``my_decision`` (the reviewer's own current decision, else empty). Other readers' decisions are never
    included, so nobody sees them before recording their own.
    """
    import pandas as pd

    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    items_q = select(Item.id, Item.name, Item.source, Item.p, Item.spread, Item.threshold, Item.model_decision,
                     Item.needs_review, Item.created_at, Item.quality).order_by(Item.id)
    if source:
        items_q = items_q.where(Item.source == source)
    with db.session(url) as s:
        items = pd.DataFrame(s.execute(items_q).all(), columns=["item_id", "name", "source", "p", "spread",
                                                                 "threshold", "model_decision", "needs_review",
                                                                 "queued_at", "quality"])
        queued = set(s.scalars(select(Item.id).where(_needs_a_look())))
        rows = s.execute(select(Review.item_id, Review.reviewer, Review.reviewer_verified, Review.reviewer_subject,
                                Review.decision).where(~_superseded())).all()
    who = as_reviewer(reviewer).key
    done = pd.DataFrame({"item_id": [r.item_id for r in rows], "decision": [r.decision for r in rows],
                         "me": [stored_reviewer(r).key == who for r in rows]}, columns=["item_id", "decision", "me"])
    mine = done[done["me"].astype(bool)].set_index("item_id")["decision"]
    others = set(done.loc[~done["me"].astype(bool), "item_id"])
    items["reviews"] = items["item_id"].map(done.groupby("item_id").size()).fillna(0).astype(int)
    items["my_decision"] = items["item_id"].map(mine).fillna("")
    pick = {"pending": items["item_id"].isin(queued) & (items["my_decision"] == ""),
            "done": items["my_decision"] != "",
            "others": items["item_id"].isin(others),
            "all": items["item_id"].isin(queued) | (items["reviews"] > 0)}[status]
    return items[pick].reset_index(drop=True)


def progress(reviewer: Reviewer | str, *, source: str | None = None, url: str | None = None) -> dict:
    """How much of the queue the reviewer has done: ``{"queued", "done", "pending"}``."""
    items = queue(reviewer, status="all", source=source, url=url)
    in_queue = items["model_decision"].eq("tumour") | items["needs_review"].astype(bool)
    done = int((in_queue & (items["my_decision"] != "")).sum())
    return {"queued": int(in_queue.sum()), "done": done, "pending": int(in_queue.sum()) - done}
