"""Scoring through the shared predictor in small chunks, each under the process-wide inference lock.

Chunking keeps one user's 500-tile batch from holding the model for its whole duration, and the lock keeps
the Grad-CAM explainer and the compiled model from being driven by two threads at once.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable

import numpy as np

from model_training.inference.predictor import N_VIEWS, Prediction

CHUNK = 64
PROGRESS_EVERY = 0.75  # seconds between progress-bar updates


def throttled(update: Callable[[float], None], every: float = PROGRESS_EVERY) -> Callable[[float], None]:
    """``update`` called at most once per ``every`` seconds.

    Each progress-bar update redraws the page in the browser (about 0.1 s of CPU there), which on a 2-core
    machine is taken from the scoring itself; 200 tiles scored in 1.5 s need no more than one.
    """
    last = time.perf_counter()

    def maybe(fraction: float) -> None:
        nonlocal last
        now = time.perf_counter()
        if now - last >= every:
            last = now
            update(fraction)
    return maybe


def predict(pred, tiles: np.ndarray, *, tta: bool, look: bool = False, lock=None, chunk: int = CHUNK,
            progress: Callable[[float], None] | None = None) -> Prediction:
    """``pred.predict`` over ``tiles`` in chunks; ``progress`` gets the fraction done after each chunk.
    ``look``: a slide's second look (8 views, the bundle's look head where it has one)."""
    tiles = np.asarray(tiles)
    tta = tta or look
    if len(tiles) == 0:
        z = np.zeros(0, np.float32)
        return Prediction(z, z, np.zeros((0, N_VIEWS), np.float32) if tta else None, z, pred.threshold(tta))
    lock = lock or contextlib.nullcontext()
    parts = []
    for start in range(0, len(tiles), chunk):
        with lock:
            parts.append(pred.predict(tiles[start:start + chunk], tta=tta, look=look))
        if progress is not None:
            progress(min(start + chunk, len(tiles)) / len(tiles))
    if len(parts) == 1:
        return parts[0]
    cat = np.concatenate
    return Prediction(cat([q.p for q in parts]), cat([q.logit for q in parts]),
                      cat([q.views for q in parts]) if tta else None, cat([q.spread for q in parts]),
                      parts[0].threshold, cat([q.quality for q in parts]), cat([q.ood for q in parts]),
                      cat([q.stain for q in parts]))


def explain_all(pred, tile: np.ndarray, lock=None) -> dict[str, np.ndarray]:
    """Grad-CAM and Grad-CAM++ of one tile from a single pass, under ``lock``."""
    with lock or contextlib.nullcontext():
        return pred.explain_all(tile)
