"""The tile grid over a slide's tissue, in level-0 pixels.

The grid is anchored at level-0 (0, 0) and its stride divides the tile, so a slide made of patches laid edge
to edge at the model's resolution is scored patch by patch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_training.bundle.contract import TILE
from model_training.slides.tissue import tissue_fractions

STRIDES = (96, 48)  # in model pixels; each divides the 96 px tile
MIN_TISSUE = 0.25  # a tile is scored when at least this fraction of it is tissue


@dataclass(frozen=True)
class Grid:
    """Tile origins (level-0) of the tiles to score, and the geometry that places them."""

    xs: np.ndarray  # (N,) int level-0 x of each tile's top-left corner
    ys: np.ndarray
    tile0: float  # tile side in level-0 pixels (96 × model mpp / slide mpp)
    step0: float  # stride in level-0 pixels
    cols: int  # full grid size, tissue or not
    rows: int

    @property
    def n(self) -> int:
        return len(self.xs)

    @property
    def size0(self) -> int:
        """The tile side rounded to whole level-0 pixels (what the CSV and GeoJSON record)."""
        return int(round(self.tile0))

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of each tile on the full grid."""
        return (np.rint(self.ys / self.step0).astype(int), np.rint(self.xs / self.step0).astype(int))


def tile_grid(dimensions: tuple[int, int], tile0: float, stride: int = TILE, mask: np.ndarray | None = None,
              mask_scale: float = 1.0, min_tissue: float = MIN_TISSUE) -> Grid:
    """Tiles of ``tile0`` level-0 pixels every ``stride`` model pixels that lie inside the slide and on tissue."""
    if stride not in STRIDES:
        raise ValueError(f"stride must be one of {STRIDES} (it must divide the {TILE} px tile)")
    w, h = dimensions
    step0 = tile0 * stride / TILE
    cols = int(np.floor((w - tile0) / step0)) + 1 if w >= tile0 else 0
    rows = int(np.floor((h - tile0) / step0)) + 1 if h >= tile0 else 0
    # every grid cell's origin, row by row, then those on enough tissue
    ys, xs = (a.ravel() for a in np.meshgrid(np.round(np.arange(rows) * step0).astype(np.int64),
                                             np.round(np.arange(cols) * step0).astype(np.int64), indexing="ij"))
    if mask is not None:
        keep = tissue_fractions(mask, xs, ys, tile0, mask_scale) >= min_tissue
        xs, ys = xs[keep], ys[keep]
    return Grid(xs, ys, float(tile0), float(step0), cols, rows)
