"""Train a bundle: ``python -m model_training.cli.train --data DIR --out BUNDLE [options]``."""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

from model_training.cli.quiet import DEBUG_EPILOG, quiet_cli
from model_training.training.config import (ARCHITECTURES, DISTRIBUTE, JIT, OPTIMIZERS, SCHEDULES, STAINS,
                                            AugmentConfig, TrainConfig, parse_sweep)

PROG = "python -m model_training.cli.train"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG)
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
    ap.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--schedule", default="cosine", choices=SCHEDULES,
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
    ap.add_argument("--jit", default="auto", choices=JIT, help="XLA compilation of train steps")
    ap.add_argument("--distribute", default="none", choices=DISTRIBUTE,
                    help="tf.distribute strategy: local GPUs, or hosts described by TF_CONFIG")
    ap.add_argument("--stream", action="store_true", help="decode from disk each epoch instead of caching in RAM")
    ap.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2",
                    help="grid over lr, batch_size, optimizer (e.g. lr=1e-3,3e-3 optimizer=adamw,sgd)")
    ap.add_argument("--fresh", action="store_true", help="ignore an interrupted run's backup and start over")
    ap.add_argument("--verbose", type=int, default=None, help="keras verbosity (default: bar on a terminal)")
    return ap.parse_args(argv)


def config_from(args: argparse.Namespace, argv: list[str]) -> TrainConfig:
    """The typed run settings the parsed command line asks for."""
    augment = None if args.no_augment else AugmentConfig(
        dihedral=not args.no_dihedral, shift=args.shift, zoom=args.zoom, brightness=args.brightness,
        contrast=args.contrast, stain=args.stain, stain_strength=args.stain_strength,
        hsv_strength=args.hsv_strength)
    return TrainConfig(
        data=args.data, out=args.out, train_split=args.train_split, val_split=args.val_split, arch=args.arch,
        width=args.width, weights=args.weights, finetune_layers=args.finetune_layers, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay,
        schedule=args.schedule, dropout=args.dropout, patience=args.patience, limit=args.limit,
        val_limit=args.val_limit, augment=augment, ema=args.ema, class_weights=not args.no_class_weights,
        target_sensitivity=args.target_sensitivity, seed=args.seed, jit=args.jit, distribute=args.distribute,
        stream=args.stream, verbose=args.verbose, command=f"{PROG} " + " ".join(shlex.quote(a) for a in argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        cfg = config_from(args, argv)
        grid = parse_sweep(args.sweep) if args.sweep else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    quiet_cli()  # --verbose here is keras' own (progress bar or lines), not the libraries' logs
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # TensorFlow loads with these modules, so they come after quiet_cli has muted its start-up lines.
    from model_training.training.loop import train_one
    from model_training.training.sweep import run_sweep

    if args.fresh:
        shutil.rmtree(Path(cfg.out) / ".backup", ignore_errors=True)
    if grid:
        run_sweep(cfg, grid)
        return 0
    card = train_one(cfg)
    print(json.dumps({"bundle": cfg.out, "auc_tta": card["validation"]["tta"]["auc"],
                      "threshold": card["threshold"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
