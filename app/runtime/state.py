"""Process-wide resources (the verified predictor, one inference lock) and per-session settings."""
from __future__ import annotations

import logging
import os
import threading
from concurrent import futures
from pathlib import Path

import numpy as np
import streamlit as st

from app.runtime import model_loader, scoring
from model_training.bundle.disclaimer import DISCLAIMER
from model_training.bundle.files import BundleError, default_bundle, read_card

log = logging.getLogger("pathreview.app")
DEBUG_ENV = "PATHREVIEW_DEBUG"  # set to re-raise page errors (tests); users never see tracebacks
THRESHOLD = "pathreview_threshold"


def bundle_path() -> Path:
    return default_bundle().expanduser().resolve()


def inference_lock() -> threading.Lock:
    """One lock for the shared model: sessions take turns chunk by chunk."""
    return model_loader.INFERENCE_LOCK


def start_loading() -> None:
    """Begin loading the configured model in the background (the server does this when it starts)."""
    model_loader.start(str(bundle_path()))


def load_predictor():
    """(predictor, None) or (None, message): missing bundles and hash mismatches become a message.

    The predictor is loaded once per process; a page that asks before it is ready waits for it here.
    """
    bundle = bundle_path()
    job = model_loader.start(str(bundle))
    if not job.done():
        with st.spinner("Loading and verifying the model bundle…"):
            futures.wait([job])
    exc = job.exception()
    if exc is None:
        return job.result(), None
    if isinstance(exc, BundleError):
        return None, f"The model bundle could not be loaded: {exc}"
    # a broken model.keras, an incompatible Keras, ...
    log.error("loading %s failed", bundle, exc_info=exc)
    return None, f"The model bundle at {bundle} could not be loaded ({type(exc).__name__}: {exc})."


def predictor():
    """The predictor for this page, or an error message and ``st.stop()``."""
    pred, error = load_predictor()
    if pred is None:
        st.error(error + "\n\nSet `PATHREVIEW_MODEL` to a PathReview model bundle directory and restart.",
                 icon=":material/error:")
        st.stop()
    return pred


def card_or_none() -> tuple[dict | None, str | None]:
    """The bundle's model card without loading the model (for the card and performance pages)."""
    try:
        return read_card(bundle_path()), None
    except BundleError as exc:
        return None, str(exc)


def predict(pred, tiles: np.ndarray, *, tta: bool = False, look: bool = False, progress=None):
    return scoring.predict(pred, tiles, tta=tta, look=look, lock=inference_lock(), progress=progress)


def explain_all(pred, tile: np.ndarray) -> dict[str, np.ndarray]:
    return scoring.explain_all(pred, tile, lock=inference_lock())


def threshold(model_threshold: float) -> float:
    """The session's exploratory threshold (Performance / Validation pages) for predictions whose own threshold
    is ``model_threshold``: one moved on predictions of another kind (single view against TTA) does not carry
    over, since the two scales differ."""
    value, basis = st.session_state.get(THRESHOLD, (None, None))
    return float(value) if value is not None and basis == float(model_threshold) else float(model_threshold)


def set_threshold(value: float, model_threshold: float) -> None:
    st.session_state[THRESHOLD] = (float(value), float(model_threshold))


def threshold_slider_follows(key: str, model_threshold: float) -> None:
    """Point the slider ``key`` at the session's threshold whenever the predictions it applies to change."""
    if key not in st.session_state or st.session_state.get(f"{key}-basis") != float(model_threshold):
        st.session_state[key] = threshold(model_threshold)
        st.session_state[f"{key}-basis"] = float(model_threshold)


def banner() -> None:
    st.warning(f"**{DISCLAIMER}** PathReview ranks tiles for a pathologist's review; its scores are "
               "research output, not a diagnosis.", icon=":material/warning:")


def run_page(page) -> None:
    """Run a page; an unexpected error becomes a short message (details go to the server log)."""
    try:
        page.run()
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        log.exception("page %s failed", getattr(page, "title", page))
        st.error(f"Something went wrong on this page: {type(exc).__name__}: {exc}. The details are in "
                 "the server log; reload the page to try again.", icon=":material/error:")
