"""Build a labelled test slide: real labelled patches laid edge to edge in a pyramidal tiled TIFF.

``python -m model_training.labelled_slide --data DIR --out slide.tiff [--grid 16x12] [--upsample 2]``

Every tile of the model's grid on such a slide is one known patch, so slide scoring can be checked against
the Predictor's scores of the same patches. ``--upsample 2`` writes the same patches at twice the resolution
(as a 20x scan of a 10x model's tiles), which exercises level choice and resampling. The TIFF carries its
resolution in its resolution tags (pixels per centimetre), which OpenSlide reports as ``openslide.mpp-x``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .data import TILE, TILE_MPP, open_source

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.labelled_slide", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="labelled dataset root (uses its valid split)")
    ap.add_argument("--out", type=Path, required=True, help="TIFF to write; the labels go beside it as .csv")
    ap.add_argument("--grid", default="16x12", help="COLSxROWS patches (default 16x12)")
    ap.add_argument("--upsample", type=int, default=1, help="write at this many times the patch resolution")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from .train import stratified_subset

    cols, rows = (int(v) for v in args.grid.lower().split("x"))
    tiles, labels, ids = stratified_subset(open_source(args.data, "valid"), cols * rows, seed=args.seed).load_all()
    frame = build(tiles, labels, ids, cols, args.out, args.upsample)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    print(f"wrote {args.out} ({cols}×{rows} patches, {frame.label.sum()} tumour) and its labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
