"""Recording reviews: one new row per decision, never an update; a correction supersedes an earlier review."""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.store import db
from app.store.items import ItemIn, StoreError, add_items
from app.store.schema import DECISIONS, Item, Review, utcnow

MAX_TEXT = 2000
MAX_NAME = 256


class ReviewRefused(StoreError):
    """A review the store does not record (no reviewer, a review already superseded, …)."""


@dataclass(frozen=True)
class Reviewer:
    """Who records a review. ``verified``: signed in through the provider, and ``subject`` is its issuer and
    subject (``issuer|sub``), the identity; ``name`` is then only what is shown. Unverified: the typed name."""

    name: str
    verified: bool = False
    subject: str | None = None

    @property
    def key(self) -> tuple[bool, str]:
        """The identity reviews are matched by: the provider's subject when verified, else the typed name."""
        return (True, self.subject or "") if self.verified else (False, self.name)

    @property
    def account(self) -> str:
        """The provider's own subject (``sub``, without the issuer) of a signed-in reviewer, else ""."""
        return (self.subject or "").rsplit("|", 1)[-1] if self.verified else ""


def as_reviewer(reviewer: Reviewer | str | None) -> Reviewer:
    """A typed name (as the store's callers give it) as an unverified ``Reviewer``."""
    return reviewer if isinstance(reviewer, Reviewer) else Reviewer(reviewer or "")


def by(reviewer: Reviewer):
    """The SQL condition: a review recorded by this identity."""
    if reviewer.verified:
        return (Review.reviewer_verified.is_(True)) & (Review.reviewer_subject == reviewer.subject)
    return (Review.reviewer_verified.is_(False)) & (Review.reviewer == reviewer.name)


def stored_reviewer(row) -> Reviewer:
    """Who recorded a stored review (a row with ``reviewer``, ``reviewer_verified``, ``reviewer_subject``)."""
    return Reviewer(row.reviewer, bool(row.reviewer_verified), row.reviewer_subject)


@dataclass(frozen=True)
class Seen:
    """What the reviewer saw in the detail view when deciding (it may score the tile again, with TTA)."""

    p: float
    spread: float
    threshold: float
    model_sha256: str | None = None  # default: the item's model
    scorer: str | None = None  # the engine that gave p (onnx-int8, onnx, keras), when known


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Free text as stored: no NULs, trimmed, bounded. (The CSV export adds its own spreadsheet guard.)"""
    return str(value or "").replace("\x00", "").strip()[:limit]


def _superseded():
    later = aliased(Review)
    return exists().where(later.supersedes_id == Review.id)


def current_review(s: Session, item_id: int, reviewer: Reviewer) -> Review | None:
    """The reviewer's review of the item that no later review supersedes."""
    return s.scalar(select(Review).where(Review.item_id == item_id, by(reviewer),
                                         ~_superseded()).order_by(Review.id.desc()).limit(1))


def my_review(item_id: int, reviewer: Reviewer | str, *, url: str | None = None) -> dict | None:
    """The reviewer's current review of an item as a dict (id, decision, comment, created_at), or None."""
    who = as_reviewer(reviewer)
    who = Reviewer(clean_text(who.name, MAX_NAME), who.verified, who.subject)
    with db.session(url) as s:
        r = current_review(s, int(item_id), who)
        return None if r is None else {"id": r.id, "decision": r.decision, "comment": r.comment,
                                       "created_at": r.created_at}


def _reviewer(reviewer: Reviewer | str | None) -> Reviewer:
    reviewer = as_reviewer(reviewer)
    name = clean_text(reviewer.name, MAX_NAME)
    if not name:
        raise ReviewRefused("A review needs a reviewer: sign in, or enter your name in the sidebar. "
                            "Anonymous reviews are not recorded.")
    subject = clean_text(reviewer.subject, MAX_NAME) or None
    if reviewer.verified and not subject:
        raise ReviewRefused("A signed-in reviewer needs the provider's subject; sign in again.")
    return Reviewer(name, bool(reviewer.verified), subject)


def record_review(item: ItemIn | int, reviewer: Reviewer | str, decision: str, comment: str = "", *,
                  seen: Seen | None = None, supersedes: int | None = None, url: str | None = None,
                  import_key: str | None = None, created_at=None) -> int:
    """Record one review of ``item`` (an ``ItemIn``, queued if new, or the id of a stored item); its id.

    ``decision`` is agree / disagree / unsure with the model decision at the threshold the reviewer saw.
    A reviewer has one current review per item: a second one must name the review it corrects in
    ``supersedes`` (the same reviewer's current review of the same item). Raises ``ReviewRefused``.
    """
    who = _reviewer(reviewer)
    if decision not in DECISIONS:
        raise ReviewRefused(f"The decision must be one of {', '.join(DECISIONS)}, got {decision!r}.")
    if seen is not None and not all(math.isfinite(float(v)) for v in (seen.p, seen.spread, seen.threshold)):
        raise ReviewRefused("p, spread and threshold must be finite numbers.")
    item_id = add_items([item], url=url)[0] if isinstance(item, ItemIn) else int(item)
    try:
        with db.session(url, write=True) as s:
            it = s.get(Item, item_id)
            if it is None:
                raise ReviewRefused(f"There is no review item #{item_id} in the store.")
            _check_supersedes(s, it, who, supersedes)
            seen = seen or Seen(it.p, it.spread, it.threshold)
            row = Review(item_id=it.id, created_at=created_at or utcnow(), reviewer=who.name,
                         reviewer_verified=who.verified, reviewer_subject=who.subject, decision=decision,
                         comment=clean_text(comment), pixel_sha256=it.pixel_sha256,
                         model_sha256=seen.model_sha256 or it.model_sha256,
                         threshold=float(seen.threshold), p=float(seen.p), spread=float(seen.spread),
                         model_decision="tumour" if seen.p >= seen.threshold else "normal",
                         scorer=clean_text(seen.scorer, 16) or None, supersedes_id=supersedes,
                         import_key=import_key)
            s.add(row)
            s.flush()
            return row.id
    except IntegrityError as exc:  # another session superseded the same review a moment before
        if supersedes is not None and "supersedes" in str(exc.orig).lower():
            raise ReviewRefused(f"Review #{supersedes} has already been superseded; reload to see the "
                                "current review.") from None
        raise


def _check_supersedes(s: Session, it: Item, who: Reviewer, supersedes: int | None) -> None:
    current = current_review(s, it.id, who)
    if supersedes is None:
        if current is not None:
            raise ReviewRefused(f"{who.name} has already reviewed {it.name} (review #{current.id}, "
                                f"{current.decision}). To change it, record a correction that supersedes "
                                f"review #{current.id}.")
        return
    old = s.get(Review, int(supersedes))
    if old is None:
        raise ReviewRefused(f"There is no review #{supersedes} to supersede.")
    if old.item_id != it.id:
        raise ReviewRefused(f"Review #{supersedes} is about another item; a correction must be about the same "
                            "tile.")
    if stored_reviewer(old).key != who.key:
        raise ReviewRefused(f"Review #{supersedes} was recorded by {old.reviewer}; only its reviewer can "
                            "correct it (record your own review instead).")
    if current is None or current.id != old.id:
        newer = f" by review #{current.id}" if current is not None else ""
        raise ReviewRefused(f"Review #{supersedes} has already been superseded{newer}; a correction must "
                            "supersede the current review.")
