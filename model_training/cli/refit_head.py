"""Refit a bundle's head on its training split with hard negatives weighted up, keeping the backbone."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, start_command

PROG = "python -m model_training.cli.refit_head"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG)
    ap.add_argument("--bundle", required=True, help="the bundle whose head is refitted")
    ap.add_argument("--data", required=True, help="dataset root with train/ (the fit) and valid/ (calibration)")
    ap.add_argument("--out", required=True, help="output bundle directory (must differ from --bundle)")
    ap.add_argument("--c", type=float, default=0.3, help="inverse L2 strength on the raw pooled features")
    ap.add_argument("--hard-negative-weight", type=float, default=3.0,
                    help="weight of a training negative the source model calls tumour (P > 0.5)")
    ap.add_argument("--limit", type=int, default=None, help="use a stratified subset of N training tiles")
    ap.add_argument("--val-limit", type=int, default=None, help="use a stratified subset of N validation tiles")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args, command = start_command(ap, argv)
    # TensorFlow loads with this module, so it comes after quiet_cli has muted its start-up lines.
    from model_training.bundle.files import BundleError
    from model_training.training.head_refit import HeadRefitError, HeadRefitSettings, refit_head

    settings = HeadRefitSettings(c=args.c, hard_negative_weight=args.hard_negative_weight)
    try:
        card = refit_head(Path(args.bundle), args.data, Path(args.out), settings, limit=args.limit,
                          val_limit=args.val_limit, command=command)
    except (HeadRefitError, BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    v = card["validation"]["tta"]
    print(json.dumps({"bundle": args.out, "auc_tta": v["auc"], "nll_tta": v["nll"], "threshold": card["threshold"],
                      "source_auc_tta": card["head_refit"]["source_validation_auc_tta"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
