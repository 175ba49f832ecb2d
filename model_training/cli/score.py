"""Batch scoring: stream a folder or PCam HDF5 of any size to a CSV with bounded memory.

``python -m model_training.cli.score --data DIR_OR_H5 --out scores.csv [--model BUNDLE] [--tta] [--kaggle]
[--engine keras]``. Like the slides command, it scores with the bundle's int8 copy where it has one; ``--engine
keras`` scores with the model of record (the int8 copy's check on the card: at most 1% of decisions differ)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_training.bundle.files import BundleError, default_bundle
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.data.sources import DatasetError, open_source
from model_training.evaluation.scoring import score_to_csv
from model_training.inference.predictor import ENGINE_HELP, ENGINES, Predictor, scores_with_keras


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.score", description=__doc__,
                                 epilog=DEBUG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="image folder, Kaggle folder + CSV, class folders or *_x.h5")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write")
    ap.add_argument("--model", type=Path, default=None, help="bundle (default: PATHREVIEW_MODEL or assets/)")
    ap.add_argument("--split", default=None, help="split under --data (e.g. valid)")
    ap.add_argument("--tta", action="store_true", help="average the 8 dihedral views (8x slower)")
    ap.add_argument("--kaggle", action="store_true", help="write Kaggle's id,label submission format")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP + "; default auto")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    bundle = args.model or default_bundle()
    quiet_cli(args.verbose, tensorflow=scores_with_keras(bundle, args.engine))  # the ONNX engines need no TensorFlow
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        pred = Predictor.load(bundle, engine=args.engine)
        source = open_source(args.data, args.split)
        n = score_to_csv(pred, source, args.out, args.tta, args.kaggle, args.batch_size)
    except (DatasetError, BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {args.out}, scored with {pred.engine.name} ({len(source.problems)} unreadable tiles "
          "skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
