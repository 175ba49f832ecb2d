"""Multi-worker training (tf.distribute.MultiWorkerMirroredStrategy) with a plain distributed loop.

Keras 3's ``model.fit`` cannot consume a multi-worker distributed dataset (keras-team/keras#20585: it fails
converting a PerReplica batch to a tensor), so the hosts-described-by-TF_CONFIG path runs its own loop:
each worker reads its shard, and every worker runs the same number of steps so the all-reduce never waits
on a worker that ran out of data.
"""
from __future__ import annotations

import logging

import numpy as np

from model_training.training.config import AugmentConfig
from model_training.training.pipeline import from_arrays

log = logging.getLogger("pathreview.distributed")


def fit_multiworker(model, strategy, x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, np.ndarray],
                    epochs: int, global_batch: int, augment: AugmentConfig | None,
                    class_weight: dict | None, seed: int) -> list[dict]:
    """Train ``model`` (built and compiled inside ``strategy.scope()``); returns per-epoch history rows."""
    import keras
    import tensorflow as tf
    from sklearn.metrics import log_loss, roc_auc_score

    steps = max(1, len(y) // global_batch)
    cw = class_weight or {0: 1.0, 1: 1.0}

    def dataset_fn(ctx: tf.distribute.InputContext):
        per_replica = ctx.get_per_replica_batch_size(global_batch)
        return from_arrays(x, y, per_replica, shuffle=True, augment=augment, seed=seed + ctx.input_pipeline_id,
                           shard=(ctx.num_input_pipelines, ctx.input_pipeline_id), repeat=True)

    dist_ds = strategy.distribute_datasets_from_function(dataset_fn)
    loss_fn = keras.losses.BinaryCrossentropy(reduction=None)
    optimizer = model.optimizer

    @tf.function
    def train_step(iterator):
        def step(xb, yb):
            with tf.GradientTape() as tape:
                p = model(xb, training=True)
                weights = tf.where(yb[:, 0] > 0.5, float(cw[1]), float(cw[0]))
                per_example = loss_fn(yb, p) * weights
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(step, args=next(iterator)), axis=None)

    iterator = iter(dist_ds)
    history = []
    for epoch in range(epochs):
        total = 0.0
        for _ in range(steps):
            total += float(train_step(iterator))
        # a direct call: model.predict would hand Keras a distributed dataset again
        p = np.concatenate([np.asarray(model(val[0][i:i + 256].astype(np.float32), training=False))[:, 0]
                            for i in range(0, len(val[0]), 256)])
        row = {"epoch": epoch, "loss": total / steps, "val_loss": float(log_loss(val[1], p, labels=[0, 1])),
               "val_auc": float(roc_auc_score(val[1], p)) if len(set(val[1])) > 1 else float("nan")}
        log.info("epoch %d/%d: loss %.4f, val_loss %.4f, val_auc %.4f", epoch + 1, epochs, row["loss"],
                 row["val_loss"], row["val_auc"])
        history.append(row)
    return history
