"""The app's start-up helpers: the background model load, the kept Keras session, the frontend preload."""
from __future__ import annotations

import pytest

from model_training.bundle import BundleError


def test_a_failed_load_is_reported_and_tried_again(tmp_path):
    from app import model_loader

    bundle = str(tmp_path / "no-such-bundle")
    first = model_loader.start(bundle)
    with pytest.raises(BundleError, match="not a PathReview model bundle"):
        first.result(timeout=120)
    second = model_loader.start(bundle)
    assert second is not first  # the next request loads again, as a fixed bundle should be picked up
    with pytest.raises(BundleError):
        second.result(timeout=120)


def test_streamlit_no_longer_clears_the_keras_session():
    from streamlit.runtime.scriptrunner import script_runner

    from app import keras_session

    keras_session.keep()
    keras_session.keep()  # idempotent
    assert script_runner._clean_problem_modules is keras_session._clean_up_except_keras


def test_every_preloaded_frontend_module_is_in_the_installed_streamlit():
    from app import frontend_preload

    files = frontend_preload.module_files()
    missing = [m for m in frontend_preload.MODULES if not any(f.startswith(f"{m}.") for f in files)]
    assert not missing, f"Streamlit's frontend no longer has {missing}: update MODULES"
