"""Grad-CAM and Grad-CAM++ on the pre-sigmoid logit.

The logit is used because a saturated sigmoid has ~zero gradient and gives an all-zero map. Both maps come
from one pass of the Predictor's engine (the logit, its gradient and ``last_conv``), with the formulas of
tf-keras-vis 0.8 (its ``Gradcam`` and ``GradcamPlusPlus`` give the same maps, but rebuild a Keras model and
run it eagerly on every call, which cost several times the pass itself).
"""
from __future__ import annotations

import numpy as np

from model_training.bundle.contract import TILE

METHODS = ("gradcam", "gradcam++")
EPSILON = 1e-7  # keras.backend.epsilon(), as tf-keras-vis uses when normalising a map


def cams(score: np.ndarray, grads: np.ndarray, conv: np.ndarray) -> dict[str, np.ndarray]:
    """{method: (1, h, w) feature-resolution map} from the logit, its gradient and ``last_conv`` (NHWC)."""
    return {"gradcam": _gradcam(grads, conv), "gradcam++": _gradcam_plus_plus(np.exp(score), grads, conv)}


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _gradcam(grads: np.ndarray, conv: np.ndarray) -> np.ndarray:
    weights = grads.mean(axis=(1, 2), keepdims=True)
    return _relu((conv * weights).sum(axis=-1))


def _gradcam_plus_plus(exp_score: np.ndarray, grads: np.ndarray, conv: np.ndarray) -> np.ndarray:
    # the closed form of Chattopadhyay et al. for an exponential score: higher derivatives are powers of grads
    first = exp_score.reshape(-1, 1, 1, 1) * grads
    second = first * grads
    third = second * grads
    global_sum = conv.sum(axis=(1, 2), keepdims=True)
    denom = second * 2.0 + third * global_sum
    alphas = second / (denom + (second == 0.0))
    norm = alphas.sum(axis=(1, 2), keepdims=True)
    alphas = alphas / (norm + (norm == 0.0))
    weights = (_relu(first) * alphas).sum(axis=(1, 2), keepdims=True)
    return _relu((weights * conv).sum(axis=-1))


def linear_zoom(cam: np.ndarray, size: int = TILE) -> np.ndarray:
    """(1, h, w) -> (1, size, size) by linear interpolation with the corners aligned.

    The same values as tf-keras-vis's ``scipy.ndimage.zoom(cam, factors, order=1)`` (a test holds them to
    1e-12). Written out because importing scipy.ndimage takes 0.35 s of CPU on a 2-core machine, which the
    app's first detail view would otherwise wait for; this is two ``np.interp`` passes over a 12x12 map.
    """
    def along(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        at = np.arange(size) * ((n - 1) / (size - 1)) if size > 1 else np.zeros(1)
        return np.apply_along_axis(lambda v: np.interp(at, np.arange(n), v), axis, a)

    return along(along(np.asarray(cam, np.float64), 1), 2)


def _expand(cam: np.ndarray) -> np.ndarray:
    """(1, h, w) feature-resolution map -> (96, 96) in [0, 1]: bilinear zoom, then min-max normalisation."""
    cam = linear_zoom(cam)
    cam = (cam - cam.min()) / (cam.max() - cam.min() + EPSILON)
    return np.clip(np.nan_to_num(cam[0].astype(np.float32)), 0.0, 1.0)


def explain_all(predictor, tile: np.ndarray) -> dict[str, np.ndarray]:
    """Every method's heat map (96, 96) float32 in [0, 1] for one tile, from a single gradient pass."""
    tile = np.asarray(tile)
    if tile.shape != (TILE, TILE, 3):
        raise ValueError(f"a tile must have shape (96, 96, 3), got {tile.shape}")
    score, grads, conv = predictor.engine.cam_inputs(tile)
    return {method: _expand(cam) for method, cam in cams(score.astype(np.float64), grads.astype(np.float64),
                                                          conv.astype(np.float64)).items()}


def explain(predictor, tile: np.ndarray, method: str = "gradcam") -> np.ndarray:
    """Heat map (96, 96) float32 in [0, 1] of where the tile's tumour evidence lies."""
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; choose from {', '.join(METHODS)}")
    return explain_all(predictor, tile)[method]


def overlay(tile: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a heat map (jet colour map) onto a uint8 tile; returns uint8 RGB."""
    c = np.clip(cam, 0, 1)[..., None]
    # jet colour map without matplotlib: blue -> cyan -> yellow -> red
    jet = np.concatenate([np.clip(1.5 - np.abs(4 * c - 3), 0, 1), np.clip(1.5 - np.abs(4 * c - 2), 0, 1),
                          np.clip(1.5 - np.abs(4 * c - 1), 0, 1)], axis=-1) * 255.0
    return ((1 - alpha) * tile.astype(np.float32) + alpha * jet).round().clip(0, 255).astype(np.uint8)
