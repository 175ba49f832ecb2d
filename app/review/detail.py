"""The tile detail view shared by every page: enlarged tile, Grad-CAM / Grad-CAM++, TTA views, review."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from app import store
from app.display.imaging import cam_colour_bar, enlarge, outline_centre
from app.display.quality import QUALITY_WORDS, call, ood_help
from app.display.text import md
from app.review import reviewer
from app.review.drawn_for import pressed_on
from app.runtime import state
from app.store import audit_csv
from model_training.inference.explain import overlay
from model_training.inference.predictor import Prediction, dihedral_views

VIEW_NAMES = ["original", "90°", "180°", "270°", "T", "T+90°", "T+180°", "T+270°"]  # T: transposed
CACHE_KEY = "pathreview_detail_cache"
CACHE_SIZE = 64
REVIEW_LABELS = {"agree": "Agree", "disagree": "Disagree", "unsure": "Unsure"}


@dataclass(frozen=True)
class FormTarget:
    """The tile a review form was drawn for (a stored item's id, or a new item's key), its name, and the id of
    the reviewer's own current review of it when the form showed one."""

    item: int | str
    name: str
    my_review: int | None


def stale_reason(pressed: FormTarget | None, now: FormTarget) -> str | None:
    """Why a review pressed on the form ``pressed`` must not be recorded against ``now`` (None: it may)."""
    if pressed is None or pressed == now:
        return None
    if pressed.item != now.item:
        return (f"the form you pressed was for {md(pressed.name)}, but the page now shows {md(now.name)} (the queue "
                "changed, perhaps in another tab). Review the tile shown below if you wish.")
    recorded = f"review #{now.my_review}" if now.my_review is not None else "no review"
    return (f"your review of {md(now.name)} changed since this form was drawn (it now stands at {recorded}, "
            "recorded elsewhere). Check it below and record again.")


def tta_scores(res: Prediction, i: int) -> dict:
    """What the detail view shows of tile ``i`` of a TTA prediction."""
    return {"p": float(res.p[i]), "spread": float(res.spread[i]), "views": res.views[i],
            "threshold": float(res.threshold), "needs_review": bool(res.needs_review[i]),
            "quality": str(res.quality[i]), "ood": float(res.ood[i])}


def analyse(pred, tile: np.ndarray, scores: dict | None = None, look: bool = False) -> dict:
    """TTA scores (``scores`` when the page has them; with ``look``, the second look's: the bundle's look head
    on the 8 views) and both CAMs for one tile, memoised per session by (model, pixels, scoring)."""
    cache: OrderedDict = st.session_state.setdefault(CACHE_KEY, OrderedDict())
    key = (pred.sha256, audit_csv.pixel_sha256(tile), look)
    if key not in cache:
        if scores is None:
            scores = tta_scores(state.predict(pred, tile[None], tta=True, look=look), 0)
        cache[key] = {**scores, **state.explain_all(pred, tile)}  # + "gradcam" and "gradcam++"
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


def render(pred, tile: np.ndarray, name: str, *, key: str, context: str = "", scores: dict | None = None,
           source: dict | None = None, item_id: int | None = None, look: bool = False) -> None:
    """Show the detail view for ``tile`` (uint8 96x96x3); ``key`` keeps widgets of different pages apart.

    ``scores`` (from ``tta_scores``) saves scoring the tile again when the page already has its TTA result.
    ``look``: the tile is one of a slide's top tiles, scored as the slide's second look scored it (the look
    head where the bundle has one), so its P here is the P the slide's list and answer rest on.
    Reviews are recorded in the store with the tile's provenance: ``source`` holds the ``store.ItemIn``
    fields saying where it came from (default: an upload called ``name``), or ``item_id`` names an item
    already in the store (the review queue).
    """
    st.subheader(f"Tile detail · {md(name)}")
    if context:
        st.caption(context)
    with st.spinner("Scoring the 8 views and computing Grad-CAM…"):
        a = analyse(pred, tile, scores, look)
    quality = a.get("quality", "ok")
    decision = call(a["p"], a["threshold"], quality)
    if quality != "ok":
        st.warning(f"**Not assessed: {QUALITY_WORDS.get(quality, quality)}.** The model's score is shown for "
                   "reference only; it makes no tumour or normal call on this tile.", icon=":material/block:")
    m = st.columns(5)
    m[0].metric("P(tumour), 8-view TTA" + (", look head" if look and pred.look_head is not None else ""),
                f"{a['p']:.3f}")
    m[1].metric("Model decision", decision, help=f"tumour when P ≥ threshold {a['threshold']:.3f} on a tile the "
                                                 "quality gate lets the model answer")
    m[2].metric("Quality", quality, help=ood_help(a.get("ood", float("nan"))))
    m[3].metric("TTA spread (std)", f"{a['spread']:.3f}")
    m[4].metric("Needs review", "yes" if a["needs_review"] else "no",
                help="near the threshold, or the eight views disagree")

    alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.45, 0.05, key=f"{key}-alpha")
    c = st.columns(3)
    c[0].image(outline_centre(enlarge(tile)), caption="Tile ×4 — green box: centre 32×32 label region")
    c[1].image(outline_centre(enlarge(overlay(tile, a["gradcam"], alpha))), caption="Grad-CAM")
    c[2].image(outline_centre(enlarge(overlay(tile, a["gradcam++"], alpha))), caption="Grad-CAM++")
    bar = st.columns([1, 2])[1]
    bar.image(cam_colour_bar(), width="stretch")
    bar.caption("Grad-CAM scale, each map scaled to its own maximum: blue = little weight for the tumour score, "
                "red = the most. It shows where the model looked, not what it saw.")

    st.markdown("**Test-time augmentation — P(tumour) of each of the eight dihedral views** "
                "(rotations; T = mirrored along the diagonal)")
    views = dihedral_views(tile[None])[0]
    cols = st.columns(8)
    for i, col in enumerate(cols):
        col.image(enlarge(views[i], 2), caption=f"{VIEW_NAMES[i]}: {a['views'][i]:.3f}", width="stretch")
    review_form(pred, tile, name, a, key=key, source=source, item_id=item_id)


def review_form(pred, tile: np.ndarray, name: str, a: dict, *, key: str, source: dict | None = None,
                item_id: int | None = None) -> None:
    """Agree / disagree / unsure, recorded in the review store under the session's reviewer."""
    status = reviewer.status()
    if not status.ok:
        st.error(status.message, icon=":material/database:")
        return
    who = reviewer.reviewer()
    item = item_id if item_id is not None else reviewer.item_for(tile, name, a, pred.sha256, source)
    try:
        stored = item if item_id is not None else store.find_item(item.key)
        mine = store.my_review(stored, who) if who and stored is not None else None
    except SQLAlchemyError as exc:
        st.error(f"The review store cannot be read ({type(exc).__name__}); reviews are disabled for now.")
        return
    flash = st.session_state.pop(f"{key}-flash", None)
    # What this form is drawn for: the tile and the reviewer's review of it the reviewer can see. A press of
    # "Record review" is about the form of the run before, which another tab or reader may have made stale.
    drawn_for = FormTarget(item_id if item_id is not None else item.key, name, mine["id"] if mine else None)
    pressed = pressed_on(f"{key}-drawn-for", drawn_for)
    with st.form(key=f"{key}-review", clear_on_submit=True):
        st.markdown("**Your review** — recorded in the review store with the pixel and model hashes")
        if mine:
            st.caption(f"You recorded **{mine['decision']}** for this tile (review #{mine['id']}). Recording "
                       f"again corrects it: the new review supersedes #{mine['id']}.")
        question = ("Do you agree with the model's decision?" if a.get("quality", "ok") == "ok" else
                    f"The model did not assess this tile; its score alone would say "
                    f"**{'tumour' if a['p'] >= a['threshold'] else 'normal'}**. Do you agree with that?")
        choice = st.radio(question, list(REVIEW_LABELS), index=None,
                          format_func=REVIEW_LABELS.get, horizontal=True, key=f"{key}-choice")
        comment = st.text_area("Comment (optional)", key=f"{key}-comment", max_chars=audit_csv.MAX_TEXT)
        submitted = st.form_submit_button("Record review", type="primary")
    if flash:
        st.success(flash, icon=":material/check_circle:")
    if who is None and not submitted:
        st.info("Sign in, or enter your name in the sidebar, to record a review.", icon=":material/badge:")
    if not submitted:
        return
    if choice is None:
        st.warning("Choose agree, disagree or unsure before recording.")
        return
    stale = stale_reason(pressed, drawn_for)
    if stale:
        st.error(f"Nothing was recorded: {stale}", icon=":material/sync_problem:")
        return
    seen = store.Seen(p=a["p"], spread=a["spread"], threshold=a["threshold"], model_sha256=pred.sha256,
                      scorer=pred.engine.name)
    try:
        rid = store.record_review(item, who, choice, comment, seen=seen, supersedes=mine["id"] if mine else None)
    except store.ReviewRefused as exc:
        st.error(f"The review was not recorded: {md(exc, 600)}", icon=":material/block:")
        return
    except SQLAlchemyError as exc:
        st.error(f"The review was not saved: the review store cannot be written ({type(exc).__name__}).")
        return
    reviewer.session_reviews().append(rid)
    # rerun so the sidebar (drawn before the page) counts and exports this review at once
    st.session_state[f"{key}-flash"] = f"Recorded **{choice}** for {md(name)} (review #{rid})."
    st.rerun()
