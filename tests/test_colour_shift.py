"""The colour-shifted validation copy: reproducible, label-free recolouring stronger than training jitter."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from model_training.evaluation.colour_shift import colour_shifted
from model_training.training.augment import augment_batch
from model_training.training.config import AugmentConfig


def _chroma(x: np.ndarray) -> np.ndarray:
    """Per-tile mean colour with brightness removed."""
    m = x.reshape(len(x), -1, 3).astype(float).mean(axis=1)
    return m / m.sum(axis=1, keepdims=True)


def test_same_tiles_and_seed_give_the_same_copy(valid_tiles):
    x = valid_tiles[0][:16]
    a, b = colour_shifted(x), colour_shifted(x)
    assert a.dtype == np.uint8 and a.shape == x.shape
    assert np.array_equal(a, b)
    assert not np.array_equal(a, colour_shifted(x, seed=1))


def test_shift_is_stronger_than_training_stain_jitter(valid_tiles):
    x = valid_tiles[0]
    cfg = AugmentConfig(dihedral=False, shift=0.0, zoom=0.0, brightness=0.0, contrast=0.0)  # stain only
    trained = augment_batch(tf.constant(x.astype(np.float32)), cfg).numpy()
    moved_train = np.abs(_chroma(trained) - _chroma(x)).sum(axis=1).mean()
    moved_shift = np.abs(_chroma(colour_shifted(x)) - _chroma(x)).sum(axis=1).mean()
    assert moved_shift > 1.3 * moved_train, (moved_shift, moved_train)


def test_evaluate_cli_scores_the_shifted_copy(tiny_bundle, data_root, capsys):
    from model_training.cli.evaluate import main

    assert main(["--model", str(tiny_bundle), "--data", str(data_root), "--split", "valid", "--limit", "200",
                 "--colour-shift"]) == 0
    out = capsys.readouterr().out
    assert "recoloured by the fixed colour shift" in out and "ROC-AUC" in out
