"""Fit a bundle's look head (the second look's scorer for a slide's highest tiles) and record it in the card."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, start_command

PROG = "python -m model_training.cli.fit_look_head"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG)
    ap.add_argument("bundle", type=Path, help="model bundle directory (its card gains the look head)")
    ap.add_argument("--data", required=True, help="dataset root: train/ fits the head, valid/ its calibration")
    ap.add_argument("--c", type=float, default=100.0, help="inverse L2 strength (default 100: nearly none)")
    ap.add_argument("--engine", default="onnx", help="what computes the pooled features (default: the float export)")
    ap.add_argument("--limit", type=int, default=None, help="use a stratified subset of N training tiles")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args, command = start_command(ap, argv)
    # after quiet_cli: the fit imports TensorFlow (with the training modules), whose start-up lines it mutes
    from model_training.bundle.files import BundleError
    from model_training.training.head_refit import HeadRefitError
    from model_training.training.look_head import fit_look_head

    try:
        entry = fit_look_head(args.bundle, args.data, c=args.c, engine=args.engine, limit=args.limit,
                              command=command)
    except (HeadRefitError, BundleError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    v = entry["validation"]
    print(f"{args.bundle}: look head written to the card; validation AUC (8 views) {v['auc']:.4f} "
          f"(tile head {v['tile_head_auc_tta']:.4f}), threshold {entry['calibration']['threshold']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
