"""The example tiles shipped in assets/examples: a small, reproducible pick of PCam validation tiles.

``python -m model_training.cli.examples --data $PATHREVIEW_DATA [--bundle BUNDLE] [--out assets/examples] [--n 32]``

The pick uses the bundle's 8-view TTA probabilities on the labelled ``valid`` split (its
``val_predictions.csv``, or a fresh scoring run when the bundle has none) and its TTA threshold, so that the
examples show every outcome: clear true positives and negatives, false positives, false negatives and close
calls. The chosen files are copied byte for byte, with a ``labels.csv`` and a README stating the licence."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.bundle.files import DEFAULT_BUNDLE, VAL_PRED_FILE, BundleError
from model_training.data.decode import TileError
from model_training.data.sources import DatasetError
from model_training.evaluation.examples import (EXAMPLES_DIR, MAX_EXAMPLES, SEED, SPLIT, ExamplesError, make_examples,
                                                shown)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.examples", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help=f"dataset root with {SPLIT}/ + {SPLIT}_labels.csv")
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE,
                    help=f"model bundle that scores the tiles (default: {shown(DEFAULT_BUNDLE)})")
    ap.add_argument("--out", type=Path, default=EXAMPLES_DIR, help=f"default: {shown(EXAMPLES_DIR)}")
    ap.add_argument("--n", type=int, default=MAX_EXAMPLES, help=f"tiles to pick, 8 to {MAX_EXAMPLES}")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--rescore", action="store_true",
                    help=f"score the split with the model even when the bundle has {VAL_PRED_FILE}")
    args = ap.parse_args(argv)
    if not 8 <= args.n <= MAX_EXAMPLES:
        ap.error(f"--n {args.n}: the example set holds 8 to {MAX_EXAMPLES} tiles")
    try:
        picked = make_examples(args.data, args.bundle, args.out, args.n, args.seed, args.rescore)
    except (ExamplesError, DatasetError, BundleError, TileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = picked["outcome"].value_counts()
    print(f"wrote {len(picked)} tiles to {args.out}: "
          + ", ".join(f"{k} {int(counts.get(k, 0))}" for k in ("TP", "FP", "FN", "TN")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
