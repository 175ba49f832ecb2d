"""Score one slide: tissue mask → tile grid → tiles read in the background → the Predictor → a result."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from model_training.bundle.contract import TILE
from model_training.inference.gate import SLIDE_OOD_SHARE
from model_training.slides.grid import MIN_TISSUE, Grid, tile_grid
from model_training.slides.outputs import tiles_frame
from model_training.slides.reader import Slide, SlideError
from model_training.slides.tiles import iter_tile_batches, read_block
from model_training.slides.tissue import TissueParams, tissue_mask

THUMB_SIDE = 2048  # the overview's longest side, at most
# ... and its pixels never finer than this (µm): the tissue mask works at 4 µm/px, and a tile of the model's
# (93 µm) still spans ~23 heat-map pixels; a finer overview of a small slide only costs time.
THUMB_UM_PER_PX = 4.0
TOP_TILES = 10


@dataclass
class Overview:
    """What is known about a slide before scoring: thumbnail, tissue mask and the grid over it."""

    thumb: np.ndarray
    scale: float  # level-0 pixels per thumbnail pixel
    mask: np.ndarray
    grid: Grid
    tissue_mm2: float
    seconds: float


@dataclass
class SlideResult:
    """A scored slide: one row per tile (level-0 coordinates) and a summary."""

    frame: pd.DataFrame
    overview: Overview
    summary: dict = field(default_factory=dict)


def overview(slide: Slide, target_mpp: float, stride: int = TILE, params: TissueParams = TissueParams(),
             min_tissue: float = MIN_TISSUE) -> Overview:
    """Thumbnail, tissue mask and tile grid; refuses a slide with no tissue (or too small for one tile)."""
    t0 = time.perf_counter()
    thumb, scale = slide.thumbnail(overview_side(slide))
    mask = tissue_mask(thumb, scale * slide.mpp, params)
    grid = tile_grid(slide.dimensions, TILE * slide.scale_for(target_mpp), stride, mask, scale, min_tissue)
    if grid.cols == 0 or grid.rows == 0:
        raise SlideError(slide.name, f"is {slide.dimensions[0]}×{slide.dimensions[1]} pixels, smaller than one "
                                     f"{TILE} px tile at {target_mpp:.3g} µm/px")
    if not mask.any() or grid.n == 0:
        raise SlideError(slide.name, "no tissue found (the tissue mask is empty: the slide looks like glass); "
                                     "lower the minimum saturation or the Otsu scale if it is pale tissue")
    tissue_mm2 = float(mask.sum()) * (scale * slide.mpp) ** 2 / 1e6
    return Overview(thumb, scale, mask, grid, tissue_mm2, time.perf_counter() - t0)


def overview_side(slide: Slide) -> int:
    """The longest side of a slide's overview, in pixels (see ``THUMB_UM_PER_PX``)."""
    extent_um = max(slide.dimensions) * slide.mpp
    return int(min(THUMB_SIDE, max(256, np.ceil(extent_um / THUMB_UM_PER_PX))))


@dataclass
class Progress:
    """Scores gathered so far for one slide's grid: an interrupted run continues from here, not from zero."""

    p: np.ndarray
    spread: np.ndarray
    decision: np.ndarray
    review: np.ndarray
    scored: np.ndarray  # bool: which tiles have their scores
    quality: np.ndarray  # object: "ok" or why the tile is not assessed
    ood: np.ndarray
    stain: np.ndarray
    views: np.ndarray  # int8: how many dihedral views each tile's score averages (8 after a second look)
    threshold: float = float("nan")
    seconds: float = 0.0

    @classmethod
    def empty(cls, n: int) -> "Progress":
        return cls(np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool),
                   np.zeros(n, bool), np.full(n, "ok", dtype=object), np.full(n, np.nan, np.float32),
                   np.full(n, np.nan, np.float32), np.ones(n, np.int8))

    def store(self, idx: np.ndarray, r, views: int) -> None:
        """Keep a ``Prediction`` for the tiles ``idx``."""
        self.p[idx], self.spread[idx] = r.p, r.spread
        self.decision[idx], self.review[idx] = r.decision, r.needs_review
        self.quality[idx], self.ood[idx], self.stain[idx] = r.quality, r.ood, r.stain
        self.views[idx] = views
        self.scored[idx] = True


def slide_quality(quality: np.ndarray, ood: np.ndarray, stain: np.ndarray) -> dict:
    """The quality gate over a whole slide: tiles not assessed by reason, the share out of distribution, the
    slide's typical stain distance from the training tiles (1.0 = the gate's limit), and a warning in words
    when the slide as a whole looks unlike the training data (None otherwise)."""
    n = len(quality)
    reasons = {str(r): int(c) for r, c in zip(*np.unique(quality[quality != "ok"], return_counts=True))}
    gated = bool(np.isfinite(ood).any())
    ood_share = float((quality == "out-of-distribution").mean()) if n and gated else None
    stain_median = float(np.nanmedian(stain)) if gated else None
    warning = None
    if gated and (ood_share >= SLIDE_OOD_SHARE or stain_median > 1.0):
        stain_words = "; its staining is unlike theirs" if stain_median > 1.0 else ""
        warning = (f"This slide does not look like the lymph-node H&E slides the model learned from ({ood_share:.0%} "
                   f"of its tiles out of distribution{stain_words}). Its scores should not be trusted: read it "
                   "without the heat map.")
    return {"not_assessed": int((quality != "ok").sum()), "reasons": reasons, "ood_share": ood_share,
            "stain_distance": stain_median, "warning": warning}


def score_slide(slide: Slide, predict: Callable, target_mpp: float, *, stride: int = TILE, tta: bool = False,
                params: TissueParams = TissueParams(), min_tissue: float = MIN_TISSUE, batch: int = 256,
                progress: Callable[[int, int], None] | None = None, ov: Overview | None = None,
                resume: Progress | None = None, second_look: int = 0,
                look: Callable | None = None) -> SlideResult:
    """Score every tissue tile; ``predict(tiles, tta)`` returns a ``Prediction`` (the Predictor's or the app's
    locked one); ``progress(done, total)`` is called after each batch.

    ``resume`` (from ``Progress.empty(grid.n)`` the first time) is filled batch by batch, so a run that is
    interrupted (the app's page rerun, say) and called again with it scores only the tiles still missing.

    ``second_look`` > 0 (without ``tta``): the slide's highest-scoring assessed tiles, that many, are scored
    again with 8-view TTA, so the tiles a slide-level answer rests on get the better estimate for a few
    tiles' worth of time: ``look(tiles)`` scores them (the Predictor's ``predict(..., look=True)``, which uses the
    bundle's look head), or ``predict(tiles, True)`` where it is not given.
    """
    ov = ov or overview(slide, target_mpp, stride, params, min_tissue)
    grid = ov.grid
    n = grid.n
    acc = resume if resume is not None and len(resume.scored) == n else Progress.empty(n)
    done = int(acc.scored.sum())
    t0 = time.perf_counter()
    try:
        for idx, tiles in iter_tile_batches(slide, grid, target_mpp, batch, skip=acc.scored):
            r = predict(tiles, tta)
            acc.store(idx, r, 8 if tta else 1)
            acc.threshold = float(r.threshold)
            done += len(idx)
            if progress is not None:
                progress(done, n)
        if second_look > 0 and not tta:
            look_again(slide, grid, target_mpp, look or (lambda t: predict(t, True)), acc, second_look)
    finally:
        acc.seconds += time.perf_counter() - t0
    frame = tiles_frame(grid.xs, grid.ys, grid.size0, acc.p, acc.spread, acc.decision, acc.review, acc.quality,
                        acc.ood)
    frame["views"] = acc.views
    top = frame[frame.quality == "ok"].sort_values("p", ascending=False, kind="stable").head(TOP_TILES)
    ok = acc.quality == "ok"
    summary = {
        "slide": slide.name, "dimensions": list(slide.dimensions), "mpp": slide.mpp, "mpp_source": slide.mpp_source,
        "vendor": slide.vendor, "model_mpp": target_mpp, "level_read": slide.level_for(target_mpp).index,
        "tile_level0_px": round(grid.tile0, 3), "stride": stride, "tta": tta, "threshold": acc.threshold,
        "tissue": {**params.as_dict(), "min_tissue": min_tissue}, "tissue_area_mm2": round(ov.tissue_mm2, 3),
        "tiles_scored": n, "tiles_second_look": int((acc.views == 8).sum()) if not tta else 0,
        "tiles_assessed": int(ok.sum()), "tiles_above_threshold": int(acc.decision.sum()),
        "tiles_needs_review": int(acc.review.sum()),
        "max_p": float(acc.p[ok].max()) if ok.any() else None,
        "quality": slide_quality(acc.quality, acc.ood, acc.stain),
        "top_tiles": top[["x", "y", "p"]].to_dict("records"),
        "timings": {"overview_s": round(ov.seconds, 3), "scoring_s": round(acc.seconds, 3),
                    "tiles_per_s": round(n / acc.seconds, 1) if acc.seconds > 0 else None},
    }
    return SlideResult(frame, ov, summary)


def look_again(slide: Slide, grid: Grid, target_mpp: float, look: Callable, acc: Progress, k: int) -> None:
    """Score the ``k`` highest assessed single-view tiles again with ``look`` (8-view TTA); their P, spread and
    decision become the look's (calibrated, and decided at the threshold, of its scoring)."""
    ok = np.flatnonzero(acc.scored & (acc.quality == "ok"))
    if not len(ok) or (acc.views == 8).any():  # none to look at, or looked at already (a resumed run)
        return
    pick = ok[np.argsort(-acc.p[ok], kind="stable")[:k]]
    # one read per tile: the top tiles lie anywhere on the slide, and read_block reads its tiles' bounding box
    tiles = np.concatenate([read_block(slide, grid, np.array([i]), target_mpp) for i in pick])
    r = look(tiles)
    acc.store(pick, r, 8)
