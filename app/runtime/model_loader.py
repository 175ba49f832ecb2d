"""The shared predictor: loaded once per process, in a background thread, by whoever asks first.

``streamlit run app/main.py`` asks when the server starts (see main.py), so loading and warming the model up
overlap with the server start and the browser's first page load; a page that needs the model before it is
ready waits for it. A bundle with a ``model.onnx`` is scored by ONNX Runtime (about 0.2 s to load), on its
int8 copy ``model.int8.onnx`` when it has one (PATHREVIEW_ENGINE=onnx keeps float32); one without is scored by
Keras, and importing TensorFlow then takes several seconds. A load that failed is tried
again on the next request, as before: the page tells the user to fix the bundle and reload.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from concurrent.futures import Future

import numpy as np

from app.runtime import keras_session
from model_training.bundle.files import read_card
from model_training.inference.predictor import ENGINES, Predictor, auto_engine

log = logging.getLogger("pathreview.app")
ENGINE_ENV = "PATHREVIEW_ENGINE"
# One lock for the shared model: sessions take turns chunk by chunk, and the warm-up below takes its turn too.
INFERENCE_LOCK = threading.Lock()
_jobs: dict[tuple[str, str], Future] = {}
_jobs_lock = threading.Lock()


def start(bundle: str) -> Future:
    """The load of ``bundle`` (a resolved path): started now unless it is under way, done, or failed earlier."""
    key = (bundle, os.environ.get(ENGINE_ENV, ""))  # one predictor per bundle and engine setting
    with _jobs_lock:
        job = _jobs.get(key)
        if job is None or (job.done() and job.exception() is not None):
            job = _jobs[key] = Future()
            threading.Thread(target=_load, args=(bundle, job), name="pathreview-model-load", daemon=True).start()
        return job


def _load(bundle: str, job: Future) -> None:
    t0 = time.perf_counter()
    try:
        engine = engine_setting()
        if (auto_engine(read_card(bundle)) if engine == "auto" else engine) == "keras":
            keras_session.keep()  # the model's warmed-up kernels must outlive each script run
            _import_keras()
        log.info("loading model bundle %s", bundle)
        # verifies sha256 (of model.onnx and its int8 copy too), loads and warms up the scorer; ONNX Runtime
        # when the bundle has a model.onnx, which spares the app importing TensorFlow at all
        pred = Predictor.load(bundle, engine=engine)
    except BaseException as exc:  # handed to the page, which reports it
        job.set_exception(exc)
        return
    job.set_result(pred)
    log.info("model ready (%s) %.1f s after the load started", pred.engine.name, time.perf_counter() - t0)
    if pred.engine.name == "keras":  # ONNX Runtime has nothing to compile
        _warm_up_explainer(pred)


def engine_setting() -> str:
    """PATHREVIEW_ENGINE: what the app scores with ("auto" unless set)."""
    value = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
    if value not in ENGINES:
        raise ValueError(f"{ENGINE_ENV}={value!r} is not one of {', '.join(ENGINES)}")
    return value


def _import_keras() -> None:
    """Import Keras without scikit-learn, which it imports only for its scikit-learn wrappers.

    PathReview never uses those wrappers, and scikit-learn is about a fifth of the 3-4 s that importing
    Keras takes on a 2-core machine, all of it before the first page can show the model. Keras treats
    scikit-learn as optional; it is hidden for the duration of this import only, and the pages that use it
    (Performance, Validation) import it as usual later. No page runs meanwhile: main.py waits for the model.
    """
    if "keras" in sys.modules or "sklearn" in sys.modules:
        return
    sys.modules["sklearn"] = None  # makes `import sklearn` raise ImportError
    try:
        import keras  # noqa: F401
    finally:
        if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]


def _warm_up_explainer(pred) -> None:
    """Compile the Keras Grad-CAM graph now, so that the first detail view does not pay for it."""
    try:
        with INFERENCE_LOCK:
            pred.explain_all(np.full((96, 96, 3), 200, np.uint8))
    except Exception:  # an explainer problem must not stop scoring; the detail view will report it
        log.warning("Grad-CAM warm-up failed", exc_info=True)
