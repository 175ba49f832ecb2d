"""Keep the Keras session between script runs, when the app scores with Keras.

Only then is it needed: with ONNX Runtime (the default whenever the bundle has a ``model.onnx``) the app never
imports Keras, and Streamlit leaves the session alone. It matters for ``PATHREVIEW_ENGINE=keras`` and for
bundles without an ONNX export.

After every script run Streamlit calls ``keras.backend.clear_session()`` when Keras is imported, for apps
that build models in their script. PathReview builds its model once per process, so that call only costs:
a full garbage collection (about 0.2 s with TensorFlow loaded) and a cleared kernel cache, which makes the
next scoring and Grad-CAM call of the run after it rebuild their kernels (about 60 ms each). Streamlit's
other clean-up (closing matplotlib figures) is kept.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger("pathreview.app")


def _clean_up_except_keras() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # as Streamlit's own clean-up: never fail a script run over it
            pass


def keep() -> None:
    """Stop Streamlit from clearing the Keras session after each script run (idempotent)."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return
    if getattr(script_runner, "_clean_problem_modules", None) is None:  # another Streamlit: leave it be
        log.info("Streamlit has no _clean_problem_modules; the Keras session is Streamlit's to manage")
        return
    script_runner._clean_problem_modules = _clean_up_except_keras
