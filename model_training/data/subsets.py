"""Reproducible subsets of a tile source, and opening a split for training (in RAM when it fits)."""
from __future__ import annotations

import logging
import time

import numpy as np

from model_training.data.sources import TileSource, open_source

log = logging.getLogger("pathreview.data")

RAM_CACHE_LIMIT = 100_000  # 100k tiles are ~2.8 GB of uint8: beyond that, stream from disk instead


def stratified_subset(source: TileSource, n: int | None, seed: int) -> TileSource:
    """A reproducible class-stratified subset of ``n`` tiles (the whole source when n is None)."""
    if n is None or n >= len(source):
        return source
    from sklearn.model_selection import train_test_split  # scikit-learn loads on first use, not at app start

    idx, _ = train_test_split(np.arange(len(source)), train_size=n, random_state=seed,
                              stratify=source.labels if len(set(source.labels)) > 1 else None)
    return source.subset(np.sort(idx))


def load_split(root: str, split: str, limit: int | None, seed: int, stream: bool):
    """Open a split; return (source, arrays or None). Problems found are logged, never fatal."""
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
