"""Grad-CAM and Grad-CAM++ on the pre-sigmoid logit.

The logit is used because a saturated sigmoid has ~zero gradient and gives an all-zero map. Both maps come
from one compiled forward and backward pass with the formulas of tf-keras-vis 0.8 (its ``Gradcam`` and
``GradcamPlusPlus`` give the same maps, but rebuild a Keras model and run it eagerly on every call, which
cost several times the pass itself).
"""
from __future__ import annotations

import numpy as np

from .data import TILE

METHODS = ("gradcam", "gradcam++")
EPSILON = 1e-7  # keras.backend.epsilon(), as tf-keras-vis uses when normalising a map


class Explainer:
    """Both heat maps of a tile from one compiled gradient pass through ``logit_model``."""

    def __init__(self, logit_model):
        import keras
        import tensorflow as tf

        from .architectures import LAST_CONV

        net = keras.Model(logit_model.inputs, [logit_model.output, logit_model.get_layer(LAST_CONV).output],
                          name="explain_model")

        def cams(x):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                logit, conv = net(x, training=False)
                score = logit[:, 0]
            grads = tape.gradient(score, conv)
            return _gradcam(grads, conv), _gradcam_plus_plus(tf.exp(score), grads, conv)

        self._fn = tf.function(cams, autograph=False,
                               input_signature=[tf.TensorSpec((1, TILE, TILE, 3), tf.float32)])

    def __call__(self, tile: np.ndarray) -> dict[str, np.ndarray]:
        """{method: (96, 96) float32 map in [0, 1]} for one uint8 tile."""
        import tensorflow as tf

        maps = self._fn(tf.constant(tile[None].astype(np.float32)))
        return {method: _expand(np.asarray(cam)) for method, cam in zip(METHODS, maps)}


def _gradcam(grads, conv):
    import tensorflow as tf

    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(conv * weights, axis=-1))


def _gradcam_plus_plus(exp_score, grads, conv):
    import tensorflow as tf

    # the closed form of Chattopadhyay et al. for an exponential score: higher derivatives are powers of grads
    first = tf.reshape(exp_score, (-1, 1, 1, 1)) * grads
    second = first * grads
    third = second * grads
    global_sum = tf.reduce_sum(conv, axis=(1, 2), keepdims=True)
    denom = second * 2.0 + third * global_sum
    alphas = second / (denom + tf.cast(second == 0.0, second.dtype))
    norm = tf.reduce_sum(alphas, axis=(1, 2), keepdims=True)
    alphas = alphas / (norm + tf.cast(norm == 0.0, norm.dtype))
    weights = tf.reduce_sum(tf.nn.relu(first) * alphas, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))


def _expand(cam: np.ndarray) -> np.ndarray:
    """(1, h, w) feature-resolution map -> (96, 96) in [0, 1]: bilinear zoom, then min-max normalisation."""
    from scipy.ndimage import zoom

    cam = zoom(cam, (1.0, TILE / cam.shape[1], TILE / cam.shape[2]), order=1)
    cam = (cam - cam.min()) / (cam.max() - cam.min() + EPSILON)
    return np.clip(np.nan_to_num(cam[0].astype(np.float32)), 0.0, 1.0)


def explain_all(predictor, tile: np.ndarray) -> dict[str, np.ndarray]:
    """Every method's heat map (96, 96) float32 in [0, 1] for one tile, from a single gradient pass."""
    tile = np.asarray(tile)
    if tile.shape != (TILE, TILE, 3):
        raise ValueError(f"a tile must have shape (96, 96, 3), got {tile.shape}")
    if predictor._explainer is None:
        predictor._explainer = Explainer(predictor.logit_model)
    return predictor._explainer(tile)


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
