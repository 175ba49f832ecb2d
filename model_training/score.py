"""Batch scoring: stream a folder or PCam HDF5 of any size to a CSV with bounded memory.

``python -m model_training.score --data DIR_OR_H5 --out scores.csv [--model BUNDLE] [--tta] [--kaggle]``
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd

from .bundle import default_bundle
from .data import DatasetError, TileSource, iter_batches, open_source
from .predictor import ENGINE_HELP, ENGINES

log = logging.getLogger("pathreview.score")


def score_batches(pred, source: TileSource, tta: bool, batch: int = 256,
                  progress: bool = True) -> Iterator[pd.DataFrame]:
    """Yield one DataFrame (id, label, p, spread, decision) per batch; unreadable tiles go to problems."""
    from tqdm import tqdm

    with tqdm(total=len(source), unit="tile", disable=not progress, file=sys.stderr) as bar:
        for tiles, ids, labels in iter_batches(source, batch):
            r = pred.predict(tiles, tta=tta, batch=batch * (8 if tta else 1))
            yield pd.DataFrame({"id": ids, "label": labels, "p": r.p, "spread": r.spread,
                                "decision": r.decision.astype(int)})
            bar.update(len(ids))


def score_to_csv(pred, source: TileSource, out: Path, tta: bool = False, kaggle: bool = False,
                 batch: int = 256, progress: bool = True) -> int:
    """Write scores batch by batch (never the whole result in memory); returns the rows written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(out, "w", newline="") as fh:
        for i, df in enumerate(score_batches(pred, source, tta, batch, progress)):
            if kaggle:  # Kaggle's submission format: id,label with label = P(tumour)
                df = df[["id", "p"]].rename(columns={"p": "label"})
            df.to_csv(fh, header=i == 0, index=False)
            rows += len(df)
        if rows == 0:
            fh.write("id,label\n" if kaggle else "id,label,p,spread,decision\n")
    for p in source.problems:
        log.warning("skipped %s", p)
    return rows


def main(argv: list[str] | None = None) -> int:
    from .quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

    ap = argparse.ArgumentParser(prog="python -m model_training.score", description=__doc__,
                                 epilog=DEBUG_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="image folder, Kaggle folder + CSV, class folders or *_x.h5")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write")
    ap.add_argument("--model", type=Path, default=None, help="bundle (default: PATHREVIEW_MODEL or assets/)")
    ap.add_argument("--split", default=None, help="split under --data (e.g. valid)")
    ap.add_argument("--tta", action="store_true", help="average the 8 dihedral views (8x slower)")
    ap.add_argument("--kaggle", action="store_true", help="write Kaggle's id,label submission format")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--engine", choices=ENGINES, default="keras", help=ENGINE_HELP)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from .bundle import BundleError
    from .predictor import Predictor

    try:
        pred = Predictor.load(args.model or default_bundle(), engine=args.engine)
        source = open_source(args.data, args.split)
        n = score_to_csv(pred, source, args.out, args.tta, args.kaggle, args.batch_size)
    except (DatasetError, BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {args.out} ({len(source.problems)} unreadable tiles skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
