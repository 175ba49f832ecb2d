"""Training-time augmentation on batches of float32 RGB tiles in [0, 255].

Tissue has no canonical orientation, so all 8 dihedral transforms are label-preserving; the label depends on
the centre 32x32, so shifts and zooms stay small. Stain jitter mimics lab-to-lab H&E variation.
"""
from __future__ import annotations

from functools import lru_cache

import tensorflow as tf

from model_training.data.stain import HED_FROM_RGB, RGB_FROM_HED
from model_training.training.config import STAINS, AugmentConfig


def dihedral(x: tf.Tensor) -> tf.Tensor:
    """Random element of the dihedral group D4 per image (flip, flip, transpose)."""
    n = tf.shape(x)[0]
    def coin():
        return tf.random.uniform([n, 1, 1, 1]) < 0.5
    x = tf.where(coin(), tf.reverse(x, [2]), x)
    x = tf.where(coin(), tf.reverse(x, [1]), x)
    return tf.where(coin(), tf.transpose(x, [0, 2, 1, 3]), x)


def shift_zoom(x: tf.Tensor, shift: float, zoom: float) -> tf.Tensor:
    """Random crop box per image (zoom in by up to ``zoom``, move by up to ``shift``), resized back."""
    n = tf.shape(x)[0]
    size = tf.shape(x)[1:3]
    scale = 1.0 - tf.random.uniform([n, 1], 0.0, zoom)
    centre = 0.5 + tf.random.uniform([n, 2], -shift, shift)
    boxes = tf.concat([centre - scale / 2, centre + scale / 2], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(n), size, extrapolation_value=0.0,
                                    method="bilinear") if zoom or shift else x


def brightness_contrast(x: tf.Tensor, brightness: float, contrast: float) -> tf.Tensor:
    n = tf.shape(x)[0]
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    c = tf.random.uniform([n, 1, 1, 1], 1.0 - contrast, 1.0 + contrast)
    b = tf.random.uniform([n, 1, 1, 1], -brightness, brightness) * 255.0
    return (x - mean) * c + mean + b


def hed_jitter(x: tf.Tensor, strength: float) -> tf.Tensor:
    """Perturb haematoxylin/eosin/DAB concentrations: hed' = hed * a + b (Tellez et al. 2018)."""
    n = tf.shape(x)[0]
    od = -tf.math.log((x + 1.0) / 256.0)
    hed = tf.einsum("nhwc,cd->nhwd", od, HED_FROM_RGB)
    a = tf.random.uniform([n, 1, 1, 3], 1.0 - strength, 1.0 + strength)
    b = tf.random.uniform([n, 1, 1, 3], -strength, strength)
    od = tf.einsum("nhwc,cd->nhwd", hed * a + b, RGB_FROM_HED)
    return 256.0 * tf.exp(-od) - 1.0


def hsv_jitter(x: tf.Tensor, strength: float) -> tf.Tensor:
    """Shift hue by up to ``strength`` (of a full turn) and scale saturation by up to 2 x ``strength``."""
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(x, 0.0, 255.0) / 255.0)
    n = tf.shape(x)[0]
    dh = tf.random.uniform([n, 1, 1, 1], -strength, strength)
    ds = tf.random.uniform([n, 1, 1, 1], 1.0 - 2 * strength, 1.0 + 2 * strength)
    h = tf.math.floormod(hsv[..., :1] + dh, 1.0)
    s = tf.clip_by_value(hsv[..., 1:2] * ds, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.concat([h, s, hsv[..., 2:]], axis=-1)) * 255.0


def _pixel_ops(x: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    if cfg.stain in ("hed", "hed+hsv") and cfg.stain_strength > 0:
        x = hed_jitter(x, cfg.stain_strength)
    if cfg.stain == "hsv" and cfg.stain_strength > 0:
        x = hsv_jitter(x, cfg.stain_strength)
    elif cfg.stain == "hed+hsv" and cfg.hsv_strength > 0:
        x = hsv_jitter(x, cfg.hsv_strength)
    if cfg.brightness or cfg.contrast:
        x = brightness_contrast(x, cfg.brightness, cfg.contrast)
    if cfg.dihedral:
        x = dihedral(x)
    return x


@lru_cache(maxsize=8)
def _compiled_pixel_ops(cfg: AugmentConfig):
    # XLA fuses the per-image selects and colour maths: measured 2.7k -> 58k img/s for the dihedral step
    # alone on 2 CPU cores, which keeps augmentation from starving the training step.
    return tf.function(lambda x: _pixel_ops(x, cfg), jit_compile=True, reduce_retracing=True)


def augment_batch(x: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Apply the configured augmentations to a float32 batch (N, H, W, 3) in [0, 255]."""
    if cfg.stain not in STAINS:
        raise ValueError(f"unknown stain augmentation {cfg.stain!r}; use one of {', '.join(STAINS)}")
    x = _compiled_pixel_ops(cfg)(x)
    x = shift_zoom(x, cfg.shift, cfg.zoom)  # crop_and_resize has no XLA kernel
    return tf.clip_by_value(x, 0.0, 255.0)
