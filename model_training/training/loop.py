"""The training loop: one ``TrainConfig`` in, one finished bundle out (checkpoints, resume, early stopping)."""
from __future__ import annotations

import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from model_training.bundle.files import HISTORY_FILE, VAL_PRED_FILE, write_card
from model_training.data.sources import TileSource
from model_training.data.spreadsheet import safe_frame
from model_training.data.subsets import load_split, stratified_subset
from model_training.export.int8 import calibration_tiles
from model_training.training import pipeline
from model_training.training.architectures import build_model, count_flops, set_trainable_top
from model_training.training.config import TrainConfig
from model_training.training.distributed import fit_multiworker
from model_training.training.finish import finalize_bundle

log = logging.getLogger("pathreview.train")


def _strategy(kind: str):
    if kind == "none":
        return None
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("--distribute needs the TensorFlow backend; with JAX use its own device sharding")
    import tensorflow as tf  # only the TensorFlow backend gets here

    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def ema_momentum(requested: float, total_steps: int) -> float:
    """The EMA momentum actually used: ``requested``, shortened so that the average spans at most a fifth
    of the run (a 0.999 average over a 50-step smoke run would still be mostly the random initial weights)."""
    if requested <= 0:
        return 0.99  # unused: EMA off
    return float(min(requested, max(0.5, 1.0 - 5.0 / max(total_steps, 1))))


def _optimizer(cfg: TrainConfig, steps_per_epoch: int):
    lr = cfg.lr
    if cfg.schedule == "cosine":
        total = max(1, steps_per_epoch * cfg.epochs)
        warmup = min(steps_per_epoch, total // 10)
        lr = keras.optimizers.schedules.CosineDecay(cfg.lr / 10, total - warmup, alpha=0.01,
                                                    warmup_target=cfg.lr, warmup_steps=warmup)
    ema = {"use_ema": cfg.ema > 0, "ema_momentum": ema_momentum(cfg.ema, steps_per_epoch * cfg.epochs)}
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **ema)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, **ema)
    return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay, **ema)


def train_one(cfg: TrainConfig, train=None, val=None) -> dict:
    """Train one configuration and write its bundle to ``cfg.out``; returns the model card.

    ``train`` and ``val`` are ``load_split`` results, passed in by a sweep so the splits are decoded once.
    """
    keras.utils.set_random_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (train_src, train_arr) = train or load_split(cfg.data, cfg.train_split, cfg.limit, cfg.seed, cfg.stream)
    (val_src, val_arr) = val or load_split(cfg.data, cfg.val_split, cfg.val_limit, cfg.seed, False)
    if val_arr is None:
        raise SystemExit("the validation split must fit in RAM (use --val-limit)")
    y_train = train_arr[1] if train_arr else train_src.labels
    aug = cfg.augment
    strategy = _strategy(cfg.distribute)
    batch = cfg.batch_size * (strategy.num_replicas_in_sync if strategy else 1)
    if cfg.distribute == "multiworker":
        train_ds = val_ds = None  # distributed.py builds one sharded dataset per worker
    elif train_arr:
        train_ds = pipeline.from_arrays(train_arr[0], train_arr[1], batch, True, aug, cfg.seed)
    else:
        train_ds = pipeline.streamed(train_src, batch, True, aug, cfg.seed)
    if train_ds is not None:
        val_ds = pipeline.from_arrays(val_arr[0], val_arr[1], 256)
    steps = max(1, len(y_train) // batch)

    with strategy.scope() if strategy else nullcontext():
        model = build_model(cfg.arch, cfg.weights, cfg.dropout, cfg.width)
        if cfg.finetune_layers and cfg.transfer:
            set_trainable_top(model, 0)  # warm up the new head first; the top layers follow below
        jit = {"auto": keras.backend.backend() != "tensorflow" or cfg.distribute == "none", "on": True,
               "off": False}[cfg.jit]
        model.compile(optimizer=_optimizer(cfg, steps), loss="binary_crossentropy", jit_compile=jit,
                      metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="acc")])
    log.info("%s: %s params, %.1f MFLOPs per image", model.name, f"{model.count_params():,}", count_flops(model) / 1e6)

    pos = float(np.mean(y_train))
    class_weight = {0: 0.5 / (1 - pos), 1: 0.5 / pos} if cfg.class_weights else None
    ckpt_dir = out / "checkpoints"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / ".backup"), delete_checkpoint=True),
        keras.callbacks.ModelCheckpoint(str(ckpt_dir / "best.weights.h5"), monitor="val_auc", mode="max",
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=cfg.patience),
        keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=(out / ".backup").exists()),
    ]
    if cfg.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3, patience=2))
    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 2)
    t0 = time.time()
    if cfg.distribute == "multiworker":
        epochs_run = _fit_multiworker(cfg, model, strategy, train_arr, val_arr, batch, class_weight, out)
    else:
        hist = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, class_weight=class_weight,
                         callbacks=callbacks, verbose=verbose)
        epochs_run = len(hist.epoch)
    if cfg.finetune_layers and cfg.transfer and cfg.distribute != "multiworker":
        set_trainable_top(model, cfg.finetune_layers)
        model.compile(optimizer=keras.optimizers.AdamW(cfg.lr / 10), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")], jit_compile=jit)
        hist = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs + max(2, cfg.epochs // 2),
                         initial_epoch=cfg.epochs, class_weight=class_weight, callbacks=callbacks[1:],
                         verbose=verbose)
        epochs_run += len(hist.epoch)
    train_time = time.time() - t0
    weights_note = choose_weights(cfg.ema, model, train_ds, val_arr, ckpt_dir)

    meta = {"name": out.name,
            "data": {"root": str(Path(cfg.data)), "train": train_src.description, "valid": val_src.description,
                     "train_count": int(len(y_train)), "train_positives": int(np.sum(y_train)),
                     "valid_count": int(len(val_arr[1])), "valid_positives": int(np.sum(val_arr[1])),
                     "split": f"{cfg.train_split} for training; {cfg.val_split} (disjoint slides) for model "
                              "selection, threshold and calibration",
                     "problems_skipped": len(train_src.problems) + len(val_src.problems)},
            "training": {"command": cfg.command,
                         "epochs_run": epochs_run, "seconds": round(train_time, 1),
                         "images_per_second": round(len(y_train) * epochs_run / train_time, 1),
                         "batch_size": batch, "optimizer": cfg.optimizer, "lr": cfg.lr, "schedule": cfg.schedule,
                         "augmentation": aug.to_dict() if aug else None, "class_weight": class_weight,
                         "weights_kept": weights_note,
                         "seed": cfg.seed, "weights": cfg.weights}}
    card = finalize_bundle(model, out, val_arr[0], val_arr[1], val_arr[2], meta, cfg.target_sensitivity,
                           int8_calibration=calibration_tiles(train_src))
    record_subset_auc(out, card, val_src)
    v = card["validation"]["tta"]
    log.info("validation (8-view TTA): AUC %.4f [%.4f, %.4f], NLL %.4f, sensitivity %.3f / specificity %.3f "
             "at threshold %.3f", v["auc"], *v["auc_ci95"], v["nll"], v["at_threshold"]["sensitivity"],
             v["at_threshold"]["specificity"], card["threshold"])
    return card


def choose_weights(ema: float, model, train_ds, val_arr, ckpt_dir: Path) -> dict:
    """Leave the weights to ship in ``model``; return what was kept and the validation AUC of each candidate.

    With an EMA (``ema`` > 0), fit() has already swapped the averaged weights in. BatchNorm statistics are not
    averaged, so they are re-estimated on augmented training batches for the averaged weights. The averaged
    weights ship by rule, not because they scored higher on validation: both figures are recorded for the
    experiments log.
    """
    def val_auc() -> float:
        p = model.predict(val_arr[0].astype(np.float32), batch_size=256, verbose=0)
        return float(roc_auc_score(val_arr[1], p.ravel()))

    best = ckpt_dir / "best.weights.h5"
    if ema <= 0 or train_ds is None:
        if best.exists():
            model.load_weights(best)
        return {"kept": "best epoch by validation AUC"}
    model.save_weights(ckpt_dir / "ema.weights.h5")
    momentum = float(model.optimizer.ema_momentum)
    note = {"kept": f"weight EMA (momentum {momentum:.4g}) with BatchNorm statistics re-estimated"}
    if best.exists():
        model.load_weights(best)
        note["best_checkpoint_val_auc_single"] = round(val_auc(), 4)
        model.load_weights(ckpt_dir / "ema.weights.h5")
    for i, (x, _) in enumerate(train_ds):
        model(x, training=True)  # BatchNorm momentum 0.9: 200 batches settle the running statistics
        if i == 200:
            break
    note["ema_val_auc_single"] = round(val_auc(), 4)
    log.info("weights: %s", note)
    return note


def _fit_multiworker(cfg: TrainConfig, model, strategy, train_arr, val_arr, batch, class_weight, out: Path) -> int:
    """The TF_CONFIG multi-host path (see distributed.py); writes history.csv like CSVLogger does."""
    if train_arr is None:
        raise SystemExit("--distribute multiworker needs the training split in RAM (drop --stream)")
    rows = fit_multiworker(model, strategy, train_arr[0], train_arr[1], val_arr[:2], cfg.epochs, batch, cfg.augment,
                           class_weight, cfg.seed)
    safe_frame(pd.DataFrame(rows)).to_csv(out / HISTORY_FILE, index=False)
    return len(rows)


def record_subset_auc(out: Path, card: dict, val_src: TileSource, n: int = 500) -> None:
    """Store the TTA AUC on a fixed stratified ``n``-tile validation subset: a quick regression check."""
    preds = pd.read_csv(out / VAL_PRED_FILE, dtype={"id": str}).set_index("id")
    ids = [i for i in stratified_subset(val_src, n, seed=0).ids if i in preds.index]
    if len(ids) == n:
        card["validation"][f"subset{n}_auc_tta"] = float(roc_auc_score(preds.loc[ids, "label"], preds.loc[ids, "p"]))
        write_card(out, card)
