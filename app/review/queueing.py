"""Putting the tiles a page scored into the review queue: those the model calls tumour or flags for review, and
those it would have called tumour but the quality gate did not let it assess (queued as "not assessed")."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from app import store
from app.display.text import md
from app.inputs import roots
from app.review import reviewer
from model_training.data.decode import TileError
from model_training.inference.predictor import needs_review

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

MAX_QUEUE = 500  # per click: reading and hashing the tiles takes a moment


def review_order(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The rows that need a look, most in need first: those flagged for review (near the threshold, or their
    views disagree), then the rest by how close P is to the threshold. A reader's time goes where the model is
    least sure, not to the hundreds of tiles it calls tumour with P = 1.000."""
    flagged = frame["needs_review"].astype(bool)
    look = frame[(frame["p"].astype(float) >= threshold) | flagged]
    order = look.assign(_flag=~flagged[look.index], _gap=(look["p"].astype(float) - threshold).abs())
    return order.sort_values(["_flag", "_gap"], kind="stable").drop(columns=["_flag", "_gap"])


def short_name(name: str, source: str, limit: int = 28) -> str:
    """An item's name as a list shows it: a long tile id (PCam's are 40-character hashes) keeps its first
    characters, a slide position keeps the slide's file name and the position."""
    if source == "slide" and " @ " in name:
        slide, where = name.split(" @ ", 1)
        return f"{slide.rsplit('/', 1)[-1]} @ {where}"
    return name if len(name) <= limit else f"{name[:limit - 8]}…{name[-6:]}"


def queue_order(items: pd.DataFrame) -> pd.DataFrame:
    """The queue, what most needs a look first: tiles flagged for review (near the threshold, or views
    disagreeing), then those the model did not assess, then the rest by closeness to the threshold."""
    flagged = items["needs_review"].astype(bool)
    gated = items["quality"].notna() & (items["quality"] != "ok") if "quality" in items else False
    order = items.assign(_rank=np.where(flagged, 0, np.where(gated, 1, 2)),
                         _gap=(items["p"].astype(float) - items["threshold"].astype(float)).abs())
    return order.sort_values(["_rank", "_gap", "item_id"], kind="stable").drop(columns=["_rank", "_gap"])


def _offer(todo: int, key: str, help: str | None = None) -> bool:
    """The "queue them" button, shown only when there is something to queue; True when it was clicked."""
    label = (f"Queue the {todo} tile(s) that need a look for review" if todo <= MAX_QUEUE else
             f"Queue the next {MAX_QUEUE} of {todo} tile(s) that need a look for review")
    return todo > 0 and st.button(label, key=key, icon=":material/playlist_add:", help=help)


def _add(items: list[store.ItemIn], what: str, left: int = 0) -> None:
    try:
        store.add_items(items)
    except (SQLAlchemyError, store.StoreError) as exc:
        st.error(f"The tiles were not queued: {md(exc, 600)}")
        return
    more = (f" {left} more need a look and are not queued yet: press the button again for the next "
            f"{min(left, MAX_QUEUE)}." if left else "")
    st.success(f"{len(items)} {what} in the review queue, those nearest the threshold first.{more}",
               icon=":material/playlist_add_check:")


def dataset_button(source, df: pd.DataFrame, path: str, pred, tta: bool, threshold: float) -> None:
    """A button that queues the scored dataset tiles that need a look (at most ``MAX_QUEUE`` a click)."""
    if not reviewer.status().ok:
        return
    root = str(roots.check(path))
    flagged = df.assign(needs_review=needs_review(df["p"], df["spread"], threshold))
    queued = store.queued_from("dataset", pred.sha256, dataset_root=root)
    pick = review_order(flagged[~flagged["id"].astype(str).isin(queued)], threshold)
    if not _offer(len(pick), "val-queue",
                  help="Tiles at or above the model threshold, or flagged for review, become review items on the "
                       "Review queue page: those flagged for review and nearest the threshold first."):
        return
    items = []
    for row in pick.head(MAX_QUEUE).itertuples():
        try:
            tile = source.get(int(row.i))
        except TileError:
            continue
        items.append(store.ItemIn.from_tile(
            tile, source="dataset", name=str(row.id), dataset_root=root, dataset_id=str(row.id),
            model_sha256=pred.sha256, p=float(row.p), spread=float(row.spread), threshold=float(threshold),
            needs_review=bool(row.needs_review), label=int(row.label) if row.label >= 0 else None,
            quality=getattr(row, "quality", None), ood=reviewer.ood_or_none(getattr(row, "ood", None))))
    _add(items, f"dataset tile(s) ({'TTA' if tta else 'single view'} scores) are", max(0, len(pick) - MAX_QUEUE))


def upload_button(records, prediction, pred) -> None:
    """A button that queues the uploaded tiles the model calls tumour or flags for review."""
    if not reviewer.status().ok:
        return
    # at or above the threshold: a tumour call, or one the gate withheld (queued as "not assessed")
    look = (prediction.p >= prediction.threshold) | prediction.needs_review
    pick = [i for i in range(len(records)) if look[i]]
    if not _offer(len(pick), "analyze-queue"):
        return
    items = [store.ItemIn.from_tile(records[i].tile, source="upload", name=records[i].name,
                                    upload_name=records[i].upload_name, model_sha256=pred.sha256,
                                    p=float(prediction.p[i]), spread=float(prediction.spread[i]),
                                    threshold=float(prediction.threshold),
                                    needs_review=bool(prediction.needs_review[i]),
                                    quality=str(prediction.quality[i]), ood=reviewer.ood_or_none(prediction.ood[i]))
             for i in pick]
    _add(items, "uploaded tile(s) are")


def slide_button(slide, slide_id: str, frame: pd.DataFrame, pred, target_mpp: float, threshold: float) -> None:
    """A button that queues a scored slide's tiles that need a look, each with the slide (``slide_id``: its path
    in the slide folder, or the uploaded file's name) and its level-0 box."""
    if not reviewer.status().ok:
        return
    # the slide's own scoring already decided both, with the same rules
    queued = store.queued_from("slide", pred.sha256, slide=slide_id)
    fresh = frame[[(int(x), int(y)) not in queued for x, y in zip(frame["x"], frame["y"])]]
    pick = review_order(fresh, threshold)  # a tile the gate withheld is queued as "not assessed" too
    if not _offer(len(pick), "slide-queue",
                  help="The tiles to look at (at or above the tile threshold, or uncertain), and those the quality "
                       "gate kept from the model whose P reaches the threshold, become review items on the Review "
                       "queue page, with the slide and their position."):
        return
    items = []
    for row in pick.head(MAX_QUEUE).itertuples():
        x, y, w, h = int(row.x), int(row.y), int(row.width), int(row.height)
        tile = slide.read_scaled(x, y, w, h, target_mpp, (96, 96))
        items.append(store.ItemIn.from_tile(
            tile, source="slide", name=f"{slide_id} @ x={x}, y={y}", slide=slide_id, x=x, y=y, width=w,
            height=h, model_sha256=pred.sha256, p=float(row.p), spread=float(row.spread),
            threshold=float(threshold), needs_review=bool(row.needs_review),
            quality=str(getattr(row, "quality", "ok")), ood=reviewer.ood_or_none(getattr(row, "ood", None))))
    _add(items, "slide tile(s) are", max(0, len(pick) - MAX_QUEUE))
