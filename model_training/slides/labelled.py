"""Build a labelled test slide: real labelled patches laid edge to edge in a pyramidal tiled TIFF.

``python -m model_training.cli.labelled_slide --data DIR --out slide.tiff [--grid 16x12] [--upsample 2]``

Every tile of the model's grid on such a slide is one known patch, so slide scoring can be checked against
the Predictor's scores of the same patches. ``--upsample 2`` writes the same patches at twice the resolution
(as a 20x scan of a 10x model's tiles), which exercises level choice and resampling. The TIFF carries its
resolution in its resolution tags (pixels per centimetre), which OpenSlide reports as ``openslide.mpp-x``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from model_training.bundle.contract import TILE, TILE_MPP
from model_training.data.sources import open_source
from model_training.data.spreadsheet import safe_frame
from model_training.data.subsets import stratified_subset

TIFF_TILE = 256


def mosaic(tiles: np.ndarray, cols: int) -> np.ndarray:
    """Tiles (N, 96, 96, 3) laid row-major on a grid ``cols`` wide (N must fill whole rows)."""
    rows = len(tiles) // cols
    return tiles[:rows * cols].reshape(rows, cols, TILE, TILE, 3).swapaxes(1, 2).reshape(rows * TILE, cols * TILE, 3)


def _resize(img: np.ndarray, factor: float, resample) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * factor)), max(1, round(h * factor))), resample))


def write_pyramid(img: np.ndarray, path: Path, mpp: float | None, levels: int = 3,
                  compression: str | None = "zlib") -> Path:
    """A tiled pyramidal TIFF (each level half the previous, box-filtered); ``mpp`` None writes no resolution."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path, bigtiff=img.size > 2 ** 31) as tif:
        level = img
        for i in range(levels):
            kw = {}
            if mpp is not None:
                kw = {"resolution": (1e4 / (mpp * 2 ** i), 1e4 / (mpp * 2 ** i)), "resolutionunit": "CENTIMETER"}
            tif.write(level, tile=(TIFF_TILE, TIFF_TILE), photometric="rgb", compression=compression,
                      subfiletype=1 if i else 0, **kw)
            if min(level.shape[:2]) < 2 * TIFF_TILE:
                break
            level = _resize(level, 0.5, Image.Resampling.BOX)
    return path


def build(tiles: np.ndarray, labels: np.ndarray, ids: list[str], cols: int, out: Path, upsample: int = 1,
          mpp: float | None = TILE_MPP, levels: int = 3) -> pd.DataFrame:
    """Write the slide; returns one row per patch: its level-0 box, id and label."""
    rows = len(tiles) // cols
    img = mosaic(tiles, cols)
    if upsample != 1:
        img = _resize(img, upsample, Image.Resampling.BICUBIC)
    write_pyramid(img, out, None if mpp is None else mpp / upsample, levels)
    n = rows * cols
    r, c = np.divmod(np.arange(n), cols)
    size = TILE * upsample
    return pd.DataFrame({"x": c * size, "y": r * size, "width": size, "height": size, "id": list(ids[:n]),
                         "label": np.asarray(labels[:n], int)})


def build_from_dataset(data: Path, out: Path, cols: int, rows: int, upsample: int = 1, seed: int = 0) -> pd.DataFrame:
    """A ``cols`` × ``rows`` slide of a stratified pick of ``data``'s validation patches, written to ``out`` with
    its labels beside it as ``out.csv``; returns the labels frame."""
    tiles, labels, ids = stratified_subset(open_source(data, "valid"), cols * rows, seed=seed).load_all()
    frame = build(tiles, labels, ids, cols, out, upsample)
    safe_frame(frame).to_csv(Path(out).with_suffix(".csv"), index=False)
    return frame
