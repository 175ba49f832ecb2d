"""Architectures honour the model contract; augmentation preserves what it must."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from model_training.bundle.contract import LAST_CONV, LOGIT, OUTPUT
from model_training.training.architectures import build_model, count_flops, set_trainable_top
from model_training.training.augment import augment_batch, dihedral, hed_jitter
from model_training.training.config import AugmentConfig


@pytest.mark.parametrize("arch", ["pathcnn", "pathcnn-small", "pathcnn-fine"])
def test_contract(arch):
    m = build_model(arch)
    assert isinstance(m, keras.Model) and m.input.dtype == "float32" and tuple(m.input.shape) == (None, 96, 96, 3)
    assert not any(isinstance(layer, keras.Model) for layer in m.layers), "no nested sub-models"
    assert len(m.get_layer(LAST_CONV).output.shape) == 4
    assert m.get_layer(LOGIT).output.shape[-1] == 1
    assert m.layers[-1].name == OUTPUT
    p = m.predict(np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32"), verbose=0)
    assert p.shape == (2, 1) and np.all((p > 0) & (p < 1))


def test_flops_of_a_known_layer():
    inp = keras.Input((96, 96, 3))
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, padding="same")(inp)))
    assert count_flops(keras.Model(inp, out)) == 2 * 96 * 96 * 8 * 3 * 3 * 3 + 2 * 8


def test_the_fine_cnn_keeps_a_residual_stage_at_48_pixels():
    m = build_model("pathcnn-fine")
    assert tuple(m.get_layer("s0_add").output.shape[1:3]) == (48, 48)
    assert tuple(m.get_layer(LAST_CONV).output.shape[1:3]) == tuple(build_model("pathcnn").get_layer(LAST_CONV)
                                                                     .output.shape[1:3])  # it can join an ensemble
    assert m.count_params() < 2_000_000 and count_flops(m) < 250e6


def test_default_cnn_is_cpu_lean():
    m = build_model("pathcnn")
    assert m.count_params() < 2_000_000 and count_flops(m) < 250e6


@pytest.mark.slow
def test_transfer_backbone_is_flat_and_finetunable():
    m = build_model("mobilenetv2", weights=None)
    assert not any(isinstance(layer, keras.Model) for layer in m.layers)
    set_trainable_top(m, 10)
    trainable = [layer for layer in m.layers if layer.trainable and layer.weights]
    assert 0 < len(trainable) <= 10 + 2  # top backbone layers + the new logit head
    assert m.get_layer(LOGIT).trainable


def test_transfer_weights_failure_is_clear(monkeypatch):
    def boom(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(keras.applications, "MobileNetV2", boom)
    with pytest.raises(RuntimeError, match="--weights none"):
        build_model("mobilenetv2", weights="imagenet")


def test_unknown_arch():
    with pytest.raises(ValueError, match="choose from"):
        build_model("vgg99")


def test_dihedral_is_a_pixel_permutation(valid_tiles):
    x = tf.constant(valid_tiles[0][:16].astype("float32"))
    y = dihedral(x).numpy()
    for a, b in zip(x.numpy(), y):
        assert np.array_equal(np.sort(a.ravel()), np.sort(b.ravel()))
        # the centre 32x32 (where the label lives) stays the centre under every dihedral element
        assert np.array_equal(np.sort(a[32:64, 32:64].ravel()), np.sort(b[32:64, 32:64].ravel()))


def test_hed_jitter_zero_strength_is_identity(valid_tiles):
    x = tf.constant(valid_tiles[0][:4].astype("float32"))
    assert np.allclose(hed_jitter(x, 0.0).numpy(), x.numpy(), atol=0.05)
    changed = hed_jitter(x, 0.1).numpy()
    assert np.abs(changed - x.numpy()).mean() > 0.5


def test_augment_batch_stays_in_range(valid_tiles):
    x = tf.constant(valid_tiles[0][:8].astype("float32"))
    for stain in ("hed", "hsv", "hed+hsv", "none"):
        y = augment_batch(x, AugmentConfig(stain=stain)).numpy()
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 255
    assert np.array_equal(augment_batch(x, AugmentConfig.off()).numpy(), x.numpy())
    with pytest.raises(ValueError, match="unknown stain"):
        augment_batch(x, AugmentConfig(stain="lab"))
