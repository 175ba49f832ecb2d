"""Evaluate a bundle on a labeled dataset: metric table, figures, predictions.

``python -m model_training.cli.evaluate --model BUNDLE --data DIR [--split valid] [--tta] [--colour-shift] [--report OUT]``
``--colour-shift`` scores a fixed recoloured copy of the tiles (stain shifts beyond the training augmentation):
a model that holds up there is less tied to the colours of the training labs.
A Kaggle submission for an unlabeled folder: ``python -m model_training.cli.score --kaggle`` (score.py)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_training.bundle.files import BundleError, default_bundle
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.data.sources import DatasetError
from model_training.evaluation.evaluate import evaluate, metric_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.evaluate", description=__doc__,
                                 epilog=DEBUG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="bundle directory (default: PATHREVIEW_MODEL or assets/)")
    ap.add_argument("--data", type=Path, required=True, help="labeled dataset (any supported layout) or its root")
    ap.add_argument("--split", default=None, help="split folder under --data (e.g. valid)")
    ap.add_argument("--tta", action="store_true", help="average the 8 dihedral views")
    ap.add_argument("--limit", type=int, default=None, help="stratified subset of N tiles")
    ap.add_argument("--colour-shift", action="store_true",
                    help="score a fixed recoloured copy (stain shift beyond the training augmentation)")
    ap.add_argument("--report", type=Path, default=None, help="write predictions, metrics.json and figures here")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    model = args.model or default_bundle()
    try:
        m = evaluate(model, args.data, args.split, args.tta, args.report, args.limit,
                     colour_shift=args.colour_shift)
    except (DatasetError, BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{m['n']} tiles ({m['positives']} tumour){' with 8-view TTA' if args.tta else ''}"
          f"{', recoloured by the fixed colour shift' if args.colour_shift else ''}; "
          f"{m['skipped']} unreadable skipped")
    print(metric_table(m).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
