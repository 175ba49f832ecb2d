"""Grad-CAM and Grad-CAM++ on the pre-sigmoid logit, via tf-keras-vis.

The logit is used because a saturated sigmoid has ~zero gradient and gives an all-zero map.
"""
from __future__ import annotations

import numpy as np

from .architectures import LAST_CONV
from .data import TILE

METHODS = ("gradcam", "gradcam++")


def _explainer(predictor, method: str):
    if method not in predictor._explainers:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

        cls = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus}[method]
        predictor._explainers[method] = cls(predictor.logit_model, clone=False)
    return predictor._explainers[method]


def explain(predictor, tile: np.ndarray, method: str = "gradcam") -> np.ndarray:
    """Heat map (96, 96) float32 in [0, 1] of where the tile's tumour evidence lies."""
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; choose from {', '.join(METHODS)}")
    tile = np.asarray(tile)
    if tile.shape != (TILE, TILE, 3):
        raise ValueError(f"a tile must have shape (96, 96, 3), got {tile.shape}")
    cam = _explainer(predictor, method)(lambda out: out[:, 0], tile[None].astype(np.float32),
                                        penultimate_layer=LAST_CONV, seek_penultimate_conv_layer=False,
                                        normalize_cam=True)
    cam = np.nan_to_num(np.asarray(cam, np.float32)[0])
    return np.clip(cam, 0.0, 1.0)


def overlay(tile: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a heat map (jet colour map) onto a uint8 tile; returns uint8 RGB."""
    c = np.clip(cam, 0, 1)[..., None]
    # jet colour map without matplotlib: blue -> cyan -> yellow -> red
    jet = np.concatenate([np.clip(1.5 - np.abs(4 * c - 3), 0, 1), np.clip(1.5 - np.abs(4 * c - 2), 0, 1),
                          np.clip(1.5 - np.abs(4 * c - 1), 0, 1)], axis=-1) * 255.0
    return ((1 - alpha) * tile.astype(np.float32) + alpha * jet).round().clip(0, 255).astype(np.uint8)
