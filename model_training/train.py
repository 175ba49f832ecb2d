"""Training CLI: ``python -m model_training.train --data DIR --out BUNDLE [options]``."""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from .data import TileSource, open_source

log = logging.getLogger("pathreview.train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from .architectures import ARCHITECTURES
    from .augment import STAINS
    from .quiet import DEBUG_EPILOG

    ap = argparse.ArgumentParser(prog="python -m model_training.train", description=__doc__, epilog=DEBUG_EPILOG)
    ap.add_argument("--data", required=True, help="dataset root with train/ + valid/ splits (Kaggle CSV or PCam HDF5)")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--val-split", default="valid")
    ap.add_argument("--out", default="runs/pathcnn", help="output bundle directory")
    ap.add_argument("--arch", default="pathcnn", choices=ARCHITECTURES)
    ap.add_argument("--width", type=int, default=None, help="pathcnn base width (default 24)")
    ap.add_argument("--weights", default="none", help="'imagenet' for transfer learning, 'none' from scratch")
    ap.add_argument("--finetune-layers", type=int, default=0,
                    help="transfer only: after the head warm-up, unfreeze the top N backbone layers")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--optimizer", default="adamw", choices=["adamw", "adam", "sgd"])
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "plateau"],
                    help="cosine decay, or ReduceLROnPlateau on validation AUC")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--patience", type=int, default=6, help="EarlyStopping patience (epochs) on validation AUC")
    ap.add_argument("--limit", type=int, default=None, help="use a stratified random subset of N training tiles")
    ap.add_argument("--val-limit", type=int, default=None, help="use a stratified subset of N validation tiles")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--no-dihedral", action="store_true")
    ap.add_argument("--stain", default="hed+hsv", choices=STAINS)
    ap.add_argument("--stain-strength", type=float, default=0.2,
                    help="HED jitter (0.2 = 'HED-strong', Tellez et al. 2019; generalises to unseen slides)")
    ap.add_argument("--hsv-strength", type=float, default=0.05, help="HSV jitter used with --stain hed+hsv")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this per-step momentum (e.g. "
                         "0.999) and ship it instead of the best epoch by val AUC (default 0: off; it did not beat "
                         "the best epoch, see EXPERIMENTS.md)")
    ap.add_argument("--shift", type=float, default=0.05)
    ap.add_argument("--zoom", type=float, default=0.10)
    ap.add_argument("--brightness", type=float, default=0.10, help="max brightness shift, fraction of 255 (0: off)")
    ap.add_argument("--contrast", type=float, default=0.15, help="max contrast change, fraction (0: off)")
    ap.add_argument("--no-class-weights", action="store_true")
    ap.add_argument("--target-sensitivity", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jit", default="auto", choices=["auto", "on", "off"], help="XLA compilation of train steps")
    ap.add_argument("--distribute", default="none", choices=["none", "mirrored", "multiworker"],
                    help="tf.distribute strategy: local GPUs, or hosts described by TF_CONFIG")
    ap.add_argument("--stream", action="store_true", help="decode from disk each epoch instead of caching in RAM")
    ap.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2",
                    help="grid over lr, batch_size, optimizer (e.g. lr=1e-3,3e-3 optimizer=adamw,sgd)")
    ap.add_argument("--fresh", action="store_true", help="ignore an interrupted run's backup and start over")
    ap.add_argument("--verbose", type=int, default=None, help="keras verbosity (default: bar on a terminal)")
    return ap.parse_args(argv)


def stratified_subset(source: TileSource, n: int | None, seed: int) -> TileSource:
    """A reproducible class-stratified subset of ``n`` tiles (the whole source when n is None)."""
    if n is None or n >= len(source):
        return source
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(source)), train_size=n, random_state=seed,
                              stratify=source.labels if len(set(source.labels)) > 1 else None)
    return source.subset(np.sort(idx))


def load_split(root: str, split: str, limit: int | None, seed: int, stream: bool):
    """Open a split; return (source, arrays or None). Problems found are logged, never fatal."""
    from .pipeline import RAM_CACHE_LIMIT

    source = stratified_subset(open_source(root, split), limit, seed)
    arrays = None
    if not stream and len(source) <= RAM_CACHE_LIMIT:
        t0 = time.time()
        arrays = source.load_all()
        log.info("%s: %d tiles decoded into RAM in %.1fs", split, len(arrays[0]), time.time() - t0)
    for p in source.problems[:20]:
        log.warning("%s", p)
    if len(source.problems) > 20:
        log.warning("... %d more problems in %s", len(source.problems) - 20, split)
    return source, arrays


def _strategy(kind: str):
    import keras

    if kind == "none":
        return None
    if keras.backend.backend() != "tensorflow":
        raise SystemExit("--distribute needs the TensorFlow backend; with JAX use its own device sharding")
    import tensorflow as tf

    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def ema_momentum(requested: float, total_steps: int) -> float:
    """The EMA momentum actually used: ``requested``, shortened so that the average spans at most a fifth
    of the run (a 0.999 average over a 50-step smoke run would still be mostly the random initial weights)."""
    if requested <= 0:
        return 0.99  # unused: EMA off
    return float(min(requested, max(0.5, 1.0 - 5.0 / max(total_steps, 1))))


def _optimizer(args, steps_per_epoch: int):
    import keras

    lr = args.lr
    if args.schedule == "cosine":
        total = max(1, steps_per_epoch * args.epochs)
        warmup = min(steps_per_epoch, total // 10)
        lr = keras.optimizers.schedules.CosineDecay(args.lr / 10, total - warmup, alpha=0.01,
                                                    warmup_target=args.lr, warmup_steps=warmup)
    ema = {"use_ema": args.ema > 0, "ema_momentum": ema_momentum(args.ema, steps_per_epoch * args.epochs)}
    if args.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **ema)
    if args.optimizer == "adam":
        return keras.optimizers.Adam(lr, **ema)
    return keras.optimizers.AdamW(lr, weight_decay=args.weight_decay, **ema)


def train_one(args: argparse.Namespace, train=None, val=None) -> dict:
    """Train one configuration and write its bundle; returns the model card."""
    import keras

    from . import pipeline
    from .architectures import build_model, count_flops, set_trainable_top
    from .augment import AugmentConfig
    from .bundle import HISTORY_FILE
    from .report import finalize_bundle

    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (train_src, train_arr) = train or load_split(args.data, args.train_split, args.limit, args.seed, args.stream)
    (val_src, val_arr) = val or load_split(args.data, args.val_split, args.val_limit, args.seed, False)
    if val_arr is None:
        raise SystemExit("the validation split must fit in RAM (use --val-limit)")
    y_train = train_arr[1] if train_arr else train_src.labels
    aug = None if args.no_augment else AugmentConfig(
        dihedral=not args.no_dihedral, shift=args.shift, zoom=args.zoom, brightness=args.brightness,
        contrast=args.contrast, stain=args.stain, stain_strength=args.stain_strength,
        hsv_strength=args.hsv_strength)
    strategy = _strategy(args.distribute)
    batch = args.batch_size * (strategy.num_replicas_in_sync if strategy else 1)
    if args.distribute == "multiworker":
        train_ds = val_ds = None  # distributed.py builds one sharded dataset per worker
    elif train_arr:
        train_ds = pipeline.from_arrays(train_arr[0], train_arr[1], batch, True, aug, args.seed)
    else:
        train_ds = pipeline.streamed(train_src, batch, True, aug, args.seed)
    if train_ds is not None:
        val_ds = pipeline.from_arrays(val_arr[0], val_arr[1], 256)
    steps = max(1, len(y_train) // batch)

    from contextlib import nullcontext

    with strategy.scope() if strategy else nullcontext():
        model = build_model(args.arch, args.weights, args.dropout, args.width)
        if args.finetune_layers and args.weights not in (None, "none"):
            set_trainable_top(model, 0)  # warm up the new head first; the top layers follow below
        jit = {"auto": keras.backend.backend() != "tensorflow" or args.distribute == "none", "on": True,
               "off": False}[args.jit]
        model.compile(optimizer=_optimizer(args, steps), loss="binary_crossentropy", jit_compile=jit,
                      metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="acc")])
    log.info("%s: %s params, %.1f MFLOPs per image", model.name, f"{model.count_params():,}", count_flops(model) / 1e6)

    pos = float(np.mean(y_train))
    class_weight = None if args.no_class_weights else {0: 0.5 / (1 - pos), 1: 0.5 / pos}
    ckpt_dir = out / "checkpoints"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / ".backup"), delete_checkpoint=True),
        keras.callbacks.ModelCheckpoint(str(ckpt_dir / "best.weights.h5"), monitor="val_auc", mode="max",
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=args.patience),
        keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=(out / ".backup").exists()),
    ]
    if args.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3, patience=2))
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    t0 = time.time()
    if args.distribute == "multiworker":
        epochs_run = _fit_multiworker(args, model, strategy, train_arr, val_arr, batch, aug, class_weight, out)
    else:
        hist = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, class_weight=class_weight,
                         callbacks=callbacks, verbose=verbose)
        epochs_run = len(hist.epoch)
    if args.finetune_layers and args.weights not in (None, "none") and args.distribute != "multiworker":
        set_trainable_top(model, args.finetune_layers)
        model.compile(optimizer=keras.optimizers.AdamW(args.lr / 10), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")], jit_compile=jit)
        hist = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs + max(2, args.epochs // 2),
                         initial_epoch=args.epochs, class_weight=class_weight, callbacks=callbacks[1:],
                         verbose=verbose)
        epochs_run += len(hist.epoch)
    train_time = time.time() - t0
    weights_note = choose_weights(args, model, train_ds, val_arr, ckpt_dir)

    meta = {"name": out.name,
            "data": {"root": str(Path(args.data)), "train": train_src.description, "valid": val_src.description,
                     "train_count": int(len(y_train)), "train_positives": int(np.sum(y_train)),
                     "valid_count": int(len(val_arr[1])), "valid_positives": int(np.sum(val_arr[1])),
                     "split": f"{args.train_split} for training; {args.val_split} (disjoint slides) for model "
                              "selection, threshold and calibration",
                     "problems_skipped": len(train_src.problems) + len(val_src.problems)},
            "training": {"command": "python -m model_training.train " + " ".join(shlex.quote(a) for a in args.argv),
                         "epochs_run": epochs_run, "seconds": round(train_time, 1),
                         "images_per_second": round(len(y_train) * epochs_run / train_time, 1),
                         "batch_size": batch, "optimizer": args.optimizer, "lr": args.lr, "schedule": args.schedule,
                         "augmentation": aug.to_dict() if aug else None, "class_weight": class_weight,
                         "weights_kept": weights_note,
                         "seed": args.seed, "weights": args.weights}}
    card = finalize_bundle(model, out, val_arr[0], val_arr[1], val_arr[2], meta, args.target_sensitivity)
    record_subset_auc(out, card, val_src)
    v = card["validation"]["tta"]
    log.info("validation (8-view TTA): AUC %.4f [%.4f, %.4f], NLL %.4f, sensitivity %.3f / specificity %.3f "
             "at threshold %.3f", v["auc"], *v["auc_ci95"], v["nll"], v["at_threshold"]["sensitivity"],
             v["at_threshold"]["specificity"], card["threshold"])
    return card


def choose_weights(args, model, train_ds, val_arr, ckpt_dir: Path) -> dict:
    """Leave the weights to ship in ``model``; return what was kept and the validation AUC of each candidate.

    With --ema, fit() has already swapped the averaged weights in. BatchNorm statistics are not averaged, so
    they are re-estimated on augmented training batches for the averaged weights. The averaged weights ship
    by rule, not because they scored higher on validation: both figures are recorded for the experiments log.
    """
    from sklearn.metrics import roc_auc_score

    def val_auc() -> float:
        p = model.predict(val_arr[0].astype(np.float32), batch_size=256, verbose=0)
        return float(roc_auc_score(val_arr[1], p.ravel()))

    best = ckpt_dir / "best.weights.h5"
    if args.ema <= 0 or train_ds is None:
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


def _fit_multiworker(args, model, strategy, train_arr, val_arr, batch, aug, class_weight, out: Path) -> int:
    """The TF_CONFIG multi-host path (see distributed.py); writes history.csv like CSVLogger does."""
    import pandas as pd

    from .bundle import HISTORY_FILE
    from .distributed import fit_multiworker

    if train_arr is None:
        raise SystemExit("--distribute multiworker needs the training split in RAM (drop --stream)")
    rows = fit_multiworker(model, strategy, train_arr[0], train_arr[1], val_arr[:2], args.epochs, batch, aug,
                           class_weight, args.seed)
    pd.DataFrame(rows).to_csv(out / HISTORY_FILE, index=False)
    return len(rows)


def record_subset_auc(out: Path, card: dict, val_src: TileSource, n: int = 500) -> None:
    """Store the TTA AUC on a fixed stratified ``n``-tile validation subset: a quick regression check."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from .bundle import VAL_PRED_FILE, write_card

    preds = pd.read_csv(out / VAL_PRED_FILE, dtype={"id": str}).set_index("id")
    ids = [i for i in stratified_subset(val_src, n, seed=0).ids if i in preds.index]
    if len(ids) == n:
        card["validation"][f"subset{n}_auc_tta"] = float(roc_auc_score(preds.loc[ids, "label"], preds.loc[ids, "p"]))
        write_card(out, card)


def run_sweep(args: argparse.Namespace) -> Path:
    """Train every combination of the swept values; write sweep.csv and sweep.md under --out."""
    import itertools

    import pandas as pd

    grid = {}
    for item in args.sweep:
        key, _, vals = item.partition("=")
        key = key.replace("-", "_")
        if key not in ("lr", "batch_size", "optimizer") or not vals:
            raise SystemExit(f"--sweep {item!r}: use lr=, batch_size= or optimizer= with comma-separated values")
        cast = {"lr": float, "batch_size": int, "optimizer": str}[key]
        grid[key] = [cast(v) for v in vals.split(",")]
    root = Path(args.out)
    train = load_split(args.data, args.train_split, args.limit, args.seed, args.stream)
    val = load_split(args.data, args.val_split, args.val_limit, args.seed, False)
    rows = []
    for combo in itertools.product(*grid.values()):
        run = argparse.Namespace(**vars(args))
        for k, v in zip(grid, combo):
            setattr(run, k, v)
        run.out = str(root / "_".join(f"{k}-{v}" for k, v in zip(grid, combo)))
        card = train_one(run, train, val)
        rows.append({**dict(zip(grid, combo)), "val_auc": card["validation"]["tta"]["auc"],
                     "val_nll": card["validation"]["tta"]["nll"], "epochs": card["training"]["epochs_run"],
                     "img_per_s": card["training"]["images_per_second"], "bundle": run.out})
    table = pd.DataFrame(rows).sort_values("val_auc", ascending=False)
    table.to_csv(root / "sweep.csv", index=False)
    (root / "sweep.md").write_text(table.to_markdown(index=False) + "\n")
    print(table.to_string(index=False))
    return root / "sweep.csv"


def main(argv: list[str] | None = None) -> int:
    from .quiet import quiet_cli

    quiet_cli()  # before parse_args, which imports keras; --verbose here is keras' own (progress bar or lines)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.argv = argv
    if args.fresh:
        import shutil

        shutil.rmtree(Path(args.out) / ".backup", ignore_errors=True)
    if args.sweep:
        run_sweep(args)
        return 0
    card = train_one(args)
    print(json.dumps({"bundle": args.out, "auc_tta": card["validation"]["tta"]["auc"],
                      "threshold": card["threshold"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
