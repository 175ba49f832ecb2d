"""What a scored slide leaves behind: tiles CSV, QuPath GeoJSON, heat-map overlay PNG, summary JSON."""
from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path

import imagecodecs
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from scipy import ndimage

from model_training.data.atomic import atomic_write
from model_training.data.spreadsheet import safe_frame
from model_training.inference.gate import NOT_ASSESSED, OK
from model_training.slides.tiles_csv import as_written

CSV_COLUMNS = ["x", "y", "width", "height", "p", "spread", "decision", "needs_review", "quality", "ood"]
POSITIVE_CLASS = {"name": "Tumor", "color": [200, 0, 0]}  # QuPath's built-in tumour class
IGNORE_CLASS = {"name": "Ignore*", "color": [180, 180, 180]}  # QuPath's class for what analysis should skip
COLOURSCALE = "Turbo"  # the app's maps and their colour bars use the same scale


def tiles_frame(xs, ys, size0: int, p, spread, decision, needs_review, quality=None, ood=None) -> pd.DataFrame:
    """One row per scored tile, coordinates in level-0 pixels; ``decision`` is "tumour", "normal" or "not
    assessed" (a tile whose ``quality`` is not "ok")."""
    n = len(np.asarray(xs))
    quality = np.full(n, OK, dtype=object) if quality is None else np.asarray(quality, dtype=object)
    assessed = quality == OK
    return pd.DataFrame({"x": np.asarray(xs, int), "y": np.asarray(ys, int), "width": int(size0),
                         "height": int(size0), "p": np.round(np.asarray(p, float), 6),
                         "spread": np.round(np.asarray(spread, float), 6),
                         "decision": np.where(~assessed, NOT_ASSESSED,
                                              np.where(np.asarray(decision, bool), "tumour", "normal")),
                         "needs_review": np.asarray(needs_review, bool) & assessed, "quality": quality,
                         "ood": np.round(np.full(n, np.nan) if ood is None else np.asarray(ood, float), 4)}
                        )[CSV_COLUMNS]


def geojson(frame: pd.DataFrame, slide_name: str) -> dict:
    """A FeatureCollection QuPath imports: one tile polygon per row, P(tumour) as a measurement."""
    # each column taken out once as Python values: row tuples and a conversion per cell took twice as long,
    # a second per 100,000 tiles
    x, y = frame["x"].to_numpy(np.int64).tolist(), frame["y"].to_numpy(np.int64).tolist()
    w, h = frame["width"].to_numpy(np.int64).tolist(), frame["height"].to_numpy(np.int64).tolist()
    p, spread = frame["p"].to_numpy(float).tolist(), frame["spread"].to_numpy(float).tolist()
    review = frame["needs_review"].to_numpy(bool).astype(int).tolist()
    quality, decision = frame["quality"].astype(str).tolist(), frame["decision"].astype(str).tolist()
    ood = frame["ood"].to_numpy(float)
    has_ood = (~np.isnan(ood)).tolist()  # NaN without a gate: QuPath measurements are numbers
    ood = ood.tolist()
    features = []
    for i in range(len(x)):
        xi, yi, x1, y1 = x[i], y[i], x[i] + w[i], y[i] + h[i]
        measurements = {"p_tumour": p[i], "tta_spread": spread[i], "needs_review": review[i],
                        "quality_ok": int(quality[i] == OK)}
        if has_ood[i]:
            measurements["ood"] = ood[i]
        props = {"objectType": "tile", "isLocked": True, "name": f"{slide_name} x={xi} y={yi}",
                 "measurements": measurements, "quality": quality[i]}
        if decision[i] == "tumour":
            props["classification"] = dict(POSITIVE_CLASS)
        elif decision[i] == NOT_ASSESSED:
            props["classification"] = dict(IGNORE_CLASS)
        features.append({"type": "Feature", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{slide_name}/{xi}/{yi}")),
                         "geometry": {"type": "Polygon",
                                      "coordinates": [[[xi, yi], [x1, yi], [x1, y1], [xi, y1], [xi, yi]]]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


@functools.cache
def _lookup() -> np.ndarray:
    """(256, 3) uint8: plotly's colour scale sampled once, so painted maps match plotly's colour bars."""
    from plotly.colors import sample_colorscale, unlabel_rgb

    return np.array([unlabel_rgb(c) for c in sample_colorscale(COLOURSCALE, np.linspace(0, 1, 256).tolist())],
                    np.uint8)


def colourize(values: np.ndarray) -> np.ndarray:
    """uint8 RGB of values in [0, 1] on the heat-map colour scale."""
    return _lookup()[np.rint(np.clip(np.asarray(values, float), 0, 1) * 255).astype(int)]


def heat_layer(shape: tuple[int, int], scale: float, frame: pd.DataFrame,
               cell: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(value map, covered mask) on a thumbnail grid of ``shape`` (rows, cols) with ``scale`` level-0 px per
    pixel: each tile paints a ``cell``-wide square (the grid stride, level-0 px) around its centre, the region
    its label concerns, so neighbouring tiles tile the map without overlapping."""
    if frame.empty:
        return np.zeros(shape, np.float32), np.zeros(shape, bool)
    painted = _per_pixel(*_heat_cells(shape, scale, frame, cell))
    covered = ~np.isnan(painted)
    return np.where(covered, painted, 0).astype(np.float32), covered


def _heat_cells(shape: tuple[int, int], scale: float, frame: pd.DataFrame,
                cell: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P per grid cell, NaN where no tile was assessed, with a NaN row and column last; the grid row of each
    thumbnail row; the grid column of each thumbnail column), off the grid pointing at the NaN row or column."""
    tile = float(frame["width"].iloc[0])
    step = float(cell or tile)
    # tiles sit on a regular grid (origin 0, pitch ``step``): paint the grid once, then look each pixel up
    cols = np.rint(frame["x"].to_numpy() / step).astype(int)
    rows = np.rint(frame["y"].to_numpy() / step).astype(int)
    grid = np.full((rows.max() + 2, cols.max() + 2), np.nan, np.float32)
    values = frame["p"].to_numpy(np.float32)
    if "decision" in frame:  # a tile not assessed has no heat: it is left unpainted
        values = np.where(frame["decision"].to_numpy() == NOT_ASSESSED, np.nan, values)
    grid[rows, cols] = values

    def index(n: int, size: int) -> np.ndarray:
        centre0 = (np.arange(n) + 0.5) * scale  # level-0 position of each thumbnail pixel's centre
        i = np.floor((centre0 - tile / 2 + step / 2) / step).astype(int)
        return np.where((i >= 0) & (i < size), i, size)

    return grid, index(shape[0], grid.shape[0] - 1), index(shape[1], grid.shape[1] - 1)


def _per_pixel(cells: np.ndarray, ri: np.ndarray, ci: np.ndarray) -> np.ndarray:
    return cells[np.ix_(ri, ci)]


def overlay(thumb: np.ndarray, scale: float, frame: pd.DataFrame, opacity: float = 0.5,
            mask: np.ndarray | None = None, cell: float | None = None) -> np.ndarray:
    """The thumbnail with the heat map blended over scored tiles and, optionally, the tissue outline."""
    thumb = np.asarray(thumb, np.uint8)
    out = thumb.copy()
    if not frame.empty:
        grid, ri, ci = _heat_cells(thumb.shape[:2], scale, frame, cell)
        # coloured cell by cell, then spread over the pixels: a colour look-up per pixel took three times as long
        colour = _per_pixel(colourize(np.nan_to_num(grid)), ri, ci)
        covered = ~np.isnan(_per_pixel(grid, ri, ci))
        base = Image.fromarray(thumb)
        # Pillow blends and composites in C, uint8 through: numpy's float32 blend took three times as long
        blended = Image.blend(base, Image.fromarray(colour), float(opacity))
        out = np.array(Image.composite(blended, base, Image.fromarray(covered)))
    if mask is not None:
        inside = np.asarray(mask[: out.shape[0], : out.shape[1]], bool)
        # the tissue's inner edge: what skimage's find_boundaries(mode="inner") marks, in half its time
        out[inside & ~ndimage.binary_erosion(inside, border_value=1)] = (0, 160, 0)
    return out


KEY_WIDTH = 560  # px: the heat map's key (scale and note) in full


def with_colour_bar(img: np.ndarray, bar_height: int = 14) -> Image.Image:
    """The heat-map overlay with its key below it: the colour scale from P(tumour) 0 to 1, labelled, and a note
    on the outline and on unpainted tiles, so the downloaded picture reads on its own."""
    h, w = img.shape[:2]
    pad = 6
    # never narrower than the key's text: the overview of a small slide can be a few hundred pixels wide
    cw = max(w, KEY_WIDTH)
    canvas = Image.new("RGB", (cw, h + bar_height + 3 * pad + 24), (255, 255, 255))
    canvas.paste(Image.fromarray(img), (0, 0))
    left, right = pad + 70, max(pad + 71, min(cw - pad - 20, pad + 70 + 512))
    ramp = colourize(np.linspace(0.0, 1.0, right - left))[None].repeat(bar_height, axis=0)
    canvas.paste(Image.fromarray(ramp), (left, h + pad))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, h + pad + 1), "P(tumour)", fill=(0, 0, 0))
    draw.text((left - 2, h + pad + bar_height + 2), "0", fill=(0, 0, 0))
    draw.text((right - 6, h + pad + bar_height + 2), "1", fill=(0, 0, 0))
    draw.text((pad, h + 2 * pad + bar_height + 12), "green line: tissue outline · unpainted tissue: not scored or "
              "not assessed by the quality gate", fill=(60, 60, 60))
    return canvas


def encode(frame: pd.DataFrame, slide_name: str, thumb: np.ndarray, scale: float, mask: np.ndarray,
           cell: float | None = None) -> dict[str, bytes]:
    """The tiles CSV, the QuPath GeoJSON and the heat-map overlay PNG of a scored slide, as file contents (the
    files' ``decision`` is the slide's call on each tile where it has a slide-level answer: see ``tiles_csv``)."""
    # fast settings (zlib level 1, run-length matching, the "sub" row filter): the overlay PNG is a preview and
    # tissue hardly compresses. Pillow's encoder tries every row filter and took twice as long, for a file 4%
    # smaller; zlib's default level took longer than scoring the slide.
    img = np.asarray(with_colour_bar(overlay(thumb, scale, frame, 0.5, mask, cell)))
    png = imagecodecs.png_encode(img, level=1, strategy=imagecodecs.PNG.STRATEGY.RLE,
                                 filter=imagecodecs.PNG.FILTER.SUB)
    written = as_written(frame)
    return {"csv": safe_frame(written).to_csv(index=False).encode(),
            "geojson": json.dumps(geojson(written, slide_name)).encode(),
            "heatmap": bytes(png)}


def write_all(out_dir: Path, stem: str, frame: pd.DataFrame, slide_name: str, thumb: np.ndarray, scale: float,
              mask: np.ndarray, summary: dict, cell: float | None = None) -> dict[str, Path]:
    """Write the four outputs; the summary goes last, so its presence means the slide is complete."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / f"{stem}.tiles.csv", "geojson": out_dir / f"{stem}.geojson",
             "heatmap": out_dir / f"{stem}.heatmap.png", "summary": out_dir / f"{stem}.summary.json"}
    for name, data in encode(frame, slide_name, thumb, scale, mask, cell).items():
        atomic_write(paths[name], data)
    summary = {**summary, "outputs": {k: v.name for k, v in paths.items()}}
    atomic_write(paths["summary"], json.dumps(summary, indent=2).encode())
    return paths
