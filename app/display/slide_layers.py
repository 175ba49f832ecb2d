"""The Slide viewer's layers over the slide: heat map and tissue outline as transparent PNGs, tile boxes.

The PNGs cover the whole slide at the overview thumbnail's resolution (``scale`` level-0 px per pixel, origin
top-left), so the viewer stretches each to the slide's width and they land on the slide's own coordinates.
Boxes are exact: level-0 x, y, width, height from the tiles frame.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from skimage.segmentation import find_boundaries

from app.display.imaging import png_bytes
from model_training.slides.outputs import colourize, heat_layer

MAX_BOXES = 2000  # more boxes than a reviewer can look at; each is an element in the browser
OUTLINE = (0, 160, 0, 255)


def heat_png(shape: tuple[int, int], scale: float, frame: pd.DataFrame, cell: float) -> bytes:
    """RGBA PNG of P(tumour) per tile on the heat-map colour scale, transparent where nothing was scored."""
    value, covered = heat_layer(shape, scale, frame, cell)
    rgba = np.zeros((*shape, 4), np.uint8)
    rgba[..., :3] = colourize(value)
    rgba[..., 3] = np.where(covered, 255, 0)
    return png_bytes(rgba)


def tissue_png(mask: np.ndarray) -> bytes:
    """RGBA PNG of the tissue mask's outline, transparent elsewhere."""
    edge = find_boundaries(mask, mode="inner")
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[edge] = OUTLINE
    return png_bytes(rgba)


def name_of(kind: str, png: bytes) -> str:
    """The overlay's name in its URL: a new image is a new URL, so a browser never shows a stale one."""
    return f"{kind}-{hashlib.sha256(png).hexdigest()[:16]}"


def boxes(flagged: pd.DataFrame, red: np.ndarray) -> list[list]:
    """``[x, y, width, height, kind]`` of the flagged tiles in the page's order: "f" (red) where ``red``
    (aligned with ``flagged``'s rows) is true, "r" (orange: worth a look) elsewhere."""
    head = flagged.head(MAX_BOXES)
    kinds = np.where(np.asarray(red, bool)[:len(head)], "f", "r")
    return [[int(r.x), int(r.y), int(r.width), int(r.height), str(k)] for r, k in zip(head.itertuples(), kinds)]


def tile_at(frame: pd.DataFrame, x: float, y: float) -> int | None:
    """The index of the scored tile whose centre is nearest the level-0 point (x, y) among those holding it."""
    hit = frame[(frame.x <= x) & (x < frame.x + frame.width) & (frame.y <= y) & (y < frame.y + frame.height)]
    if hit.empty:
        return None
    d = (hit.x + hit.width / 2 - x) ** 2 + (hit.y + hit.height / 2 - y) ** 2
    return int(d.idxmin())


def to_look_at_words(n: int, flagged: int, shown: int) -> str:
    """The caption of the slide's list of tiles to look at: how many, how many of them are flagged, how many are
    shown. Flagged (red) are the slide answer's few tiles; the rest are worth a look without being flagged."""
    rest = n - flagged
    words = (f"{n:,} tile{'s' * (n != 1)} to look at: {flagged:,} flagged (red), {rest:,} worth a look (orange: at "
             "the tile threshold, or uncertain)")
    return words + (f"; the first {shown} are shown." if shown < n else ".")
