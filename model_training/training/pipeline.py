"""tf.data input pipelines: in-RAM for sets that fit, streamed with parallel decode for the rest."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from model_training.bundle.contract import TILE
from model_training.data.decode import TileError
from model_training.data.sources import Problem, TileSource
from model_training.training.augment import augment_batch
from model_training.training.config import AugmentConfig

AUTOTUNE = tf.data.AUTOTUNE


def _finish(ds: tf.data.Dataset, batch: int, augment: AugmentConfig | None, drop_remainder: bool):
    ds = ds.batch(batch, drop_remainder=drop_remainder)

    def to_float(x, y):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = augment_batch(x, augment)
        return x, tf.cast(y, tf.float32)[:, None]

    return ds.map(to_float, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def from_arrays(x: np.ndarray, y: np.ndarray, batch: int = 64, shuffle: bool = False,
                augment: AugmentConfig | None = None, seed: int = 0,
                shard: tuple[int, int] | None = None, repeat: bool = False) -> tf.data.Dataset:
    """Batches of (float32 tiles in [0, 255], float32 labels (N, 1)) from uint8 arrays held in RAM.

    ``shard=(count, index)`` keeps this worker's share of the tiles; ``repeat`` loops forever (for a fixed
    number of steps per epoch, as multi-worker training needs).
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))
    if shard is not None:
        ds = ds.shard(*shard)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return _finish(ds, batch, augment, drop_remainder=shuffle)


def streamed(source: TileSource, batch: int = 64, shuffle: bool = False,
             augment: AugmentConfig | None = None, seed: int = 0) -> tf.data.Dataset:
    """Decode tiles on the fly (parallel, bounded memory); unreadable tiles are dropped and reported."""
    labels = source.labels.astype(np.int64)

    def load(i):
        i = int(i)
        try:
            return source.get(i), labels[i], True
        except TileError as exc:
            source.problems.append(Problem(exc.name, exc.reason))
            return np.zeros((TILE, TILE, 3), np.uint8), labels[i], False

    ds = tf.data.Dataset.range(len(source))
    if shuffle:
        ds = ds.shuffle(min(len(source), 50_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda i: tf.numpy_function(load, [i], (tf.uint8, tf.int64, tf.bool)),
                num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    ds = ds.filter(lambda x, y, ok: ok).map(
        lambda x, y, ok: (tf.ensure_shape(x, (TILE, TILE, 3)), tf.ensure_shape(y, ())))
    return _finish(ds, batch, augment, drop_remainder=shuffle)
