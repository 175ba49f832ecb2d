"""Process-wide resources (the verified predictor, one inference lock) and per-session settings."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from model_training.bundle import BundleError, default_bundle, read_card
from model_training.figures import DISCLAIMER

from . import scoring

log = logging.getLogger("pathreview.app")
DEBUG_ENV = "PATHREVIEW_DEBUG"  # set to re-raise page errors (tests); users never see tracebacks
DECISIONS = "pathreview_decisions"
THRESHOLD = "pathreview_threshold"


@st.cache_resource(show_spinner="Loading and verifying the model bundle…")
def _load_predictor(bundle: str):
    from model_training.predictor import Predictor

    log.info("loading model bundle %s", bundle)
    pred = Predictor.load(bundle)  # verifies sha256, compiles and warms up the scorer
    try:  # build both explainers now, so the first detail view does not pay for it
        blank = np.full((96, 96, 3), 200, np.uint8)
        for method in ("gradcam", "gradcam++"):
            pred.explain(blank, method)
    except Exception:  # an explainer problem must not stop scoring; the detail view will report it
        log.warning("Grad-CAM warm-up failed", exc_info=True)
    return pred


@st.cache_resource
def inference_lock() -> threading.Lock:
    """One lock for the shared model: sessions take turns chunk by chunk."""
    return threading.Lock()


def bundle_path() -> Path:
    return default_bundle().expanduser().resolve()


def load_predictor():
    """(predictor, None) or (None, message): missing bundles and hash mismatches become a message."""
    bundle = bundle_path()
    try:
        return _load_predictor(str(bundle)), None
    except BundleError as exc:
        return None, f"The model bundle could not be loaded: {exc}"
    except Exception as exc:  # a broken model.keras, an incompatible Keras, ...
        log.exception("loading %s failed", bundle)
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


def predict(pred, tiles: np.ndarray, *, tta: bool, progress=None):
    return scoring.predict(pred, tiles, tta=tta, lock=inference_lock(), progress=progress)


def explain(pred, tile: np.ndarray, method: str) -> np.ndarray:
    return scoring.explain(pred, tile, method, lock=inference_lock())


def threshold(default: float) -> float:
    """The session's exploratory operating threshold (Performance / Validation pages)."""
    return float(st.session_state.setdefault(THRESHOLD, float(default)))


def set_threshold(value: float) -> None:
    st.session_state[THRESHOLD] = float(value)


def decisions() -> list[dict]:
    return st.session_state.setdefault(DECISIONS, [])


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
