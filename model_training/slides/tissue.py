"""Tissue detection on a slide thumbnail, so glass and background are never scored.

Stained tissue is saturated and glass is not: Otsu's threshold on the HSV saturation splits them, then
specks are removed and small holes filled (scikit-image).

The mask is made at no finer than ``MASK_UM_PER_PX``: at a slide's own resolution pale cytoplasm, fat and the
gaps between nuclei fall below the threshold, the tissue breaks into fragments smaller than a speck, and whole
tiles of real tissue (pale tumour among them) were dropped before scoring. Averaging the thumbnail over a few
microns first keeps tissue one piece, and costs a fraction of the full-resolution mask.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MASK_UM_PER_PX = 4.0  # a 96 px tile at 0.972 µm/px is ~23 mask pixels wide: fine enough for its tissue fraction


@dataclass(frozen=True)
class TissueParams:
    """What counts as tissue; every field is adjustable from the CLI and the app."""

    min_saturation: float = 0.05  # floor under Otsu's threshold: a slide of glass only has no tissue
    otsu_scale: float = 1.0  # below 1 keeps paler tissue, above 1 keeps only strongly stained tissue
    # Otsu splits tissue from glass when both are present; on a field of tissue alone it would split pale
    # from dark tissue, so the threshold never rises above a saturation that glass does not reach.
    # Pale tissue (fat, loose stroma, pale tumour) averages a saturation of 0.08-0.15 at the mask's
    # resolution; glass stays under 0.05.
    max_saturation: float = 0.08
    # Specks smaller than this (µm²) are dust, not tissue. A quarter of a tile: a lone tile of tissue among
    # pale neighbours must not be erased as a speck.
    min_object_um2: float = 2000.0
    max_hole_um2: float = 20000.0  # holes smaller than this inside tissue are kept as tissue

    def as_dict(self) -> dict:
        return asdict(self)


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in [0, 1] of a uint8 RGB image: (max - min) / max, 0 where max is 0 (as scikit-image's
    rgb2hsv, computed on the integers in float32: five times faster on a 2048-px thumbnail)."""
    rgb = np.asarray(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # channel by channel: a reduction over the last axis of 3 took 14x as long on a 1,120-px overview
    hi = np.maximum(np.maximum(r, g), b)
    spread = (hi - np.minimum(np.minimum(r, g), b)).astype(np.float32)
    hi = hi.astype(np.float32)
    return np.divide(spread, hi, out=np.zeros_like(hi), where=hi > 0)


def tissue_mask(thumb: np.ndarray, um_per_px: float, params: TissueParams = TissueParams()) -> np.ndarray:
    """Boolean tissue mask of a uint8 RGB thumbnail whose pixels are ``um_per_px`` µm wide (same shape as the
    thumbnail; computed at ``MASK_UM_PER_PX`` when the thumbnail is finer)."""
    thumb = np.asarray(thumb)
    factor = max(1, round(MASK_UM_PER_PX / um_per_px)) if um_per_px > 0 else 1
    if factor == 1 or min(thumb.shape[:2]) < 2 * factor:
        return _mask(thumb, um_per_px, params)
    small = _mask(block_mean(thumb, factor), um_per_px * factor, params)
    big = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    h, w = thumb.shape[:2]
    # the last partial block of each side takes the value of the block before it
    return np.pad(big, ((0, max(0, h - big.shape[0])), (0, max(0, w - big.shape[1]))), mode="edge")[:h, :w]


def block_mean(rgb: np.ndarray, factor: int) -> np.ndarray:
    """The image shrunk ``factor`` times by averaging whole blocks (a partial last row or column of blocks is
    left out), as uint8."""
    from skimage.measure import block_reduce

    h, w = (rgb.shape[0] // factor) * factor, (rgb.shape[1] // factor) * factor
    return block_reduce(rgb[:h, :w], (factor, factor, 1), np.mean).round().astype(np.uint8)


def _mask(thumb: np.ndarray, um_per_px: float, params: TissueParams) -> np.ndarray:
    from skimage import morphology
    from skimage.filters import threshold_otsu

    sat = saturation(thumb)
    try:
        t = threshold_otsu(sat) * params.otsu_scale
    except ValueError:  # a constant image
        t = 1.0
    mask = sat > max(min(t, params.max_saturation), params.min_saturation)
    px_area = um_per_px ** 2
    min_px = max(1, int(params.min_object_um2 / px_area))
    hole_px = max(1, int(params.max_hole_um2 / px_area))
    mask = morphology.remove_small_objects(mask, max_size=min_px)
    mask = morphology.remove_small_holes(mask, max_size=hole_px)
    return mask


def tissue_fractions(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray, size: float, scale: float) -> np.ndarray:
    """Fraction of each level-0 square (xs[i], ys[i], size) that the mask (``scale`` level-0 px per pixel) calls
    tissue: window sums from a summed-area table kept only at the mask rows where windows start or end."""
    h, w = mask.shape
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    c0, r0 = np.floor(xs / scale).astype(np.int64), np.floor(ys / scale).astype(np.int64)
    c1 = np.maximum(c0 + 1, np.ceil((xs + size) / scale).astype(np.int64))
    r1 = np.maximum(r0 + 1, np.ceil((ys + size) / scale).astype(np.int64))
    c0, c1 = np.clip(c0, 0, w), np.clip(c1, 0, w)
    r0, r1 = np.clip(r0, 0, h), np.clip(r1, 0, h)
    rows = np.unique(np.concatenate([r0, r1]))
    # row by row: numpy's running sum down the rows of a whole mask took longer than a mean per tile window did
    table = np.zeros((len(rows), w + 1), np.int64)
    above, prev = np.zeros(w, np.int64), 0
    mask = np.asarray(mask, bool)
    for k, r in enumerate(rows):
        above += mask[prev:r].sum(axis=0)  # tissue pixels of each column above row r
        table[k, 1:] = np.cumsum(above)
        prev = r
    k0, k1 = np.searchsorted(rows, r0), np.searchsorted(rows, r1)
    count = table[k1, c1] - table[k0, c1] - table[k1, c0] + table[k0, c0]
    area = np.maximum(c1 - c0, 0) * np.maximum(r1 - r0, 0)
    return np.divide(count, area, out=np.zeros(len(xs)), where=area > 0)
