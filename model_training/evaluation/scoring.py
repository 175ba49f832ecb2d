"""Batch scoring: stream a folder or PCam HDF5 of any size to a CSV with bounded memory.

``python -m model_training.cli.score --data DIR_OR_H5 --out scores.csv [--model BUNDLE] [--tta] [--kaggle]``
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from model_training.data.sources import TileSource, iter_batches
from model_training.data.spreadsheet import safe_frame

log = logging.getLogger("pathreview.score")


def score_batches(pred, source: TileSource, tta: bool, batch: int = 256,
                  progress: bool = True) -> Iterator[pd.DataFrame]:
    """Yield one DataFrame (id, label, p, spread, decision, quality, ood) per batch; ``decision`` is 1 for a
    tumour call, 0 for normal, empty for a tile the quality gate did not assess; unreadable tiles go to
    problems."""
    from tqdm import tqdm

    with tqdm(total=len(source), unit="tile", disable=not progress, file=sys.stderr) as bar:
        for tiles, ids, labels in iter_batches(source, batch):
            r = pred.predict(tiles, tta=tta, batch=batch * (8 if tta else 1))
            decision = pd.array(r.decision.astype(int), dtype="Int64")
            decision[~r.assessed] = pd.NA
            yield pd.DataFrame({"id": ids, "label": labels, "p": r.p, "spread": r.spread,
                                "decision": decision, "quality": r.quality,
                                "ood": np.round(r.ood, 4)})
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
            safe_frame(df).to_csv(fh, header=i == 0, index=False)
            rows += len(df)
        if rows == 0:
            fh.write("id,label\n" if kaggle else "id,label,p,spread,decision,quality,ood\n")
    for p in source.problems:
        log.warning("skipped %s", p)
    return rows
