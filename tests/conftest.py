"""Shared fixtures: the real PCam subset (via PATHREVIEW_DATA) and a tiny bundle trained on it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("PATHREVIEW_DATA")
    if not root:
        pytest.skip("PATHREVIEW_DATA is not set (point it at a PCam subset with train/ and valid/)")
    path = Path(root)
    if not (path / "valid").is_dir():
        pytest.skip(f"PATHREVIEW_DATA={root} has no valid/ folder")
    return path


@pytest.fixture(scope="session")
def png_browser() -> str:
    """The Chromium/Chrome that kaleido drives for PNG figures; tests that need one skip without it.

    The search is the exporter's own: Debian's /usr/bin/chromium (what the e2e tests drive), any
    Chrome/Chromium on PATH, or BROWSER_PATH.
    """
    from model_training.figures import find_browser

    path = find_browser()
    if path is None:
        pytest.skip("no Chromium/Chrome browser for the PNG export (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def valid_tiles(data_root) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """64 real validation tiles (uint8), their labels and ids."""
    from model_training.data import open_source
    from model_training.train import stratified_subset

    return stratified_subset(open_source(data_root, "valid"), 64, seed=0).load_all()


@pytest.fixture(scope="session")
def tiny_bundle(data_root, tmp_path_factory) -> Path:
    """A small model trained briefly on 1000 real patches: it honours the full bundle contract and has
    really learned (test_train checks its validation AUC)."""
    from model_training.train import main

    out = tmp_path_factory.mktemp("bundle") / "tiny"
    main(["--data", str(data_root), "--arch", "pathcnn-small", "--epochs", "3", "--limit", "1000",
          "--val-limit", "400", "--batch-size", "64", "--out", str(out), "--verbose", "0",
          "--ema", "0.999"])  # the weight-average path, so the tests cover it
    return out
