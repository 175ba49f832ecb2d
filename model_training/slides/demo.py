"""A demo slide made only of the CC0 example tiles shipped in ``assets/examples``, for demonstrations and teaching
where no slide may be shown, and for the picture in the README.

A blob of tissue on glass laid out, as the labelled case slides are (``case_set``), from the example tiles the
model calls clearly normal, each turned by a random dihedral view, with one metastasis of the tiles it calls
clearly tumour. The tiles repeat (sixteen of them fill some ninety cells), so the slide shows what the Slide page
does; it measures nothing.

    python -m model_training.cli.demo_slide --out slides/demo.tiff
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model_training.bundle.contract import TILE, TILE_MPP
from model_training.data.decode import read_tile
from model_training.data.spreadsheet import safe_frame
from model_training.evaluation.examples import EXAMPLES_DIR, LABELS_FILE
from model_training.slides.case_set import blob, dihedral, glass, metastasis
from model_training.slides.labelled import write_pyramid

NORMAL, TUMOUR = "clear TN", "clear TP"  # labels.csv's ``chosen_as`` for the tiles the model calls clearly


def build_demo_slide(out: Path, examples: Path = EXAMPLES_DIR, cells: int = 90, tumour_tiles: int = 5,
                     side: int = 14, seed: int = 4) -> pd.DataFrame:
    """Write the demo slide to ``out`` (its per-tile labels beside it as ``.csv``); returns the labels."""
    picked = pd.read_csv(Path(examples) / LABELS_FILE)
    tiles = {kind: [read_tile(Path(examples) / f"{i}.jpg") for i in picked.id[picked.chosen_as == kind]]
             for kind in (NORMAL, TUMOUR)}
    if not tiles[NORMAL] or not tiles[TUMOUR]:
        raise ValueError(f"{examples}: {LABELS_FILE} names no '{NORMAL}' or no '{TUMOUR}' tiles")
    rng = np.random.default_rng(seed)
    tissue = blob(rng, side, side, cells)
    tumour = metastasis(rng, tissue, tumour_tiles)
    img = glass(rng, side)
    rows = []
    for r, c in np.argwhere(tissue):
        pool = tiles[TUMOUR] if tumour[r, c] else tiles[NORMAL]
        img[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = dihedral(pool[rng.integers(len(pool))],
                                                                          int(rng.integers(8)))
        rows.append({"x": c * TILE, "y": r * TILE, "width": TILE, "height": TILE, "label": int(tumour[r, c])})
    write_pyramid(img, Path(out), TILE_MPP, levels=2)
    frame = pd.DataFrame(rows)
    safe_frame(frame).to_csv(Path(out).with_suffix(".csv"), index=False)
    return frame
