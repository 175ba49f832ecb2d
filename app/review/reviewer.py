"""The app's side of the review store: opened once per process, the session's reviewer, the message shown
when reviews are off, and the provenance a page hands to the detail view."""
from __future__ import annotations

import math

import streamlit as st

from app import store
from app.review import identity

SESSION_REVIEWS = "pathreview_decisions"  # ids of the reviews recorded in this browser session


def status() -> store.Status:
    """The store's state for this process (connect + migrate on first use; a failure is retried later)."""
    return store.open_store()


def reviewer() -> store.Reviewer | None:
    return identity.current()


def require_store() -> None:
    """Stop the page with the store's message when reviews are off (the store cannot be opened)."""
    status_now = status()
    if not status_now.ok:
        st.error(status_now.message, icon=":material/database:")
        st.stop()


def session_reviews() -> list[int]:
    return st.session_state.setdefault(SESSION_REVIEWS, [])


def item_for(tile, name: str, a: dict, model_sha256: str, source: dict | None) -> store.ItemIn:
    """The review item for a tile the detail view shows; ``source`` carries its provenance (default: an
    upload called ``name``), e.g. ``{"source": "dataset", "dataset_root": ..., "dataset_id": ..., "label": 1}``
    or ``{"source": "slide", "slide": ..., "x": ..., "y": ..., "width": 96, "height": 96}``."""
    fields = {"source": "upload", "upload_name": name, **(source or {})}
    return store.ItemIn.from_tile(tile, name=name, model_sha256=model_sha256, p=a["p"], spread=a["spread"],
                                  threshold=a["threshold"], needs_review=bool(a.get("needs_review", False)),
                                  quality=a.get("quality"), ood=ood_or_none(a.get("ood")), **fields)


def ood_or_none(value) -> float | None:
    """An ood score as the store keeps it: a finite float, or None (a bundle without a gate gives NaN)."""
    return float(value) if value is not None and math.isfinite(float(value)) else None
