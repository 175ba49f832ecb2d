"""Small case slides built from real validation patches, for the tests of batch scoring and of stored cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model_training.slides.case_set import build_case, load_half


def small_cases(data_root: Path, folder: Path, n: int, half: int, seed: int) -> list[Path]:
    """``n`` small case slides (16 patch cells on a 6×6 grid) from one half of the validation split, written to
    ``folder`` as ``case-<k>.tiff``; the last holds a metastasis, the others none."""
    tiles, labels, ids = load_half(data_root, half)
    rng = np.random.default_rng(seed)
    paths = [folder / f"case-{k}.tiff" for k in range(n)]
    for k, path in enumerate(paths):
        build_case(tiles, labels, ids, path, rng, positive=k == n - 1, cells=16, side=6)
    return paths
