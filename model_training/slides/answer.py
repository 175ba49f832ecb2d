"""The slide-level answer: from a slide's scored tiles to ``slide_score`` (P that the slide holds a metastasis),
a ``decision`` at the card's slide-level operating point, and which tiles to flag on it.

The tile threshold is chosen for tile sensitivity, so on a normal slide of a few hundred tiles it raises tens
of alarms. A slide is instead summarised by two features of its assessed tiles' logits, combined by a
logistic regression fitted on labelled case slides (``slide_level`` in the model card):

- ``top3``: the mean logit of the three highest tiles (a metastasis raises a few tiles, not one);
- ``best_pair``: the best pair of edge-adjacent tiles, scored by the lower of their two logits (a metastasis
  spans neighbouring tiles; a normal tile the model mistakes for tumour usually stands alone).

A tile is flagged when its P reaches ``tile_flag_p`` (fitted so that a normal slide shows about one flag),
and the top tile of a slide called positive is always flagged, so a positive answer points at tissue. Tiles
whose ``quality`` is not ``ok`` are not assessed: they count neither toward the score nor as flagged.

**No answer.** A slide with no assessed tile gets no score. A slide the quality gate calls unlike the slides the
model learned from (its ``warning``) keeps its score, but no decision and no flags: its scores should not be
trusted, so the model neither calls it nor points at its tiles, and a pathologist reads it without them. A slide
below the operating point is not called negative either when more than ``UNSEEN_MAX`` of its tissue tiles were
kept from the model (out of focus, pen, folds): a metastasis could lie in what was not seen. A positive call
stands whatever was not seen.

**Slide size.** The case slides the answer is fitted on hold about 50 tissue tiles; a scanned lymph node holds
thousands. The highest normal tiles of a slide rise with its size (the largest of N draws), so levels fitted on
small slides would call every large slide positive and flag hundreds of its tiles. Above the fit set's median
slide (``reference_tiles``), a slide's logits are therefore read ``size_shift`` lower, which keeps a normal
slide's expected top tiles, and so its score and its flag count, where they were on the case slides: when
normal tiles' logits have an exponential upper tail of scale ``tail_scale``, the k-th highest of N tiles grows
by ``tail_scale * ln(N)``. The fit measures that scale on its normal slides' tiles. Smaller slides keep the
fitted levels (a shift down would flag, on a slide of a few tiles, tiles below the tile decision).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from model_training.inference.gate import BACKGROUND, OK
from model_training.inference.predictor import sigmoid

POSITIVE, NEGATIVE = "metastasis", "no_metastasis"
NO_TILES = "no tile of the slide passed the quality gate (glass, folds, ink, blur or unlike the training tiles)"
# A negative answer needs most of the slide's tissue seen: beyond this share of its tissue tiles (glass is not
# tissue) kept from the model, it is withheld. On 1,000 case slides built from validation patches the gate kept at
# most 19% of a slide's tissue tiles from the model.
UNSEEN_MAX = 0.25
EPS = 1e-6
FEATURES = ("top3", "best_pair")


@dataclass(frozen=True)
class SlideLevel:
    """The card's slide-level parameters: logistic-regression ``weights`` (one per ``FEATURES`` entry) and
    ``intercept``, the decision ``threshold`` on ``slide_score``, the tile flag level ``tile_flag_p``,
    ``second_look``: how many of a slide's highest tiles are re-scored with 8-view TTA before the answer, and
    the size rule: ``tail_scale`` (logits) and ``reference_tiles`` (0: none; see the module's docstring)."""

    weights: tuple[float, ...] = (1.0, 0.0)
    intercept: float = 0.0
    threshold: float = 0.5
    tile_flag_p: float = 0.5
    second_look: int = 0
    tail_scale: float = 0.0
    reference_tiles: int = 0

    def size_shift(self, n: int) -> float:
        """How much lower (in logits) the tiles of a slide with ``n`` assessed tiles are read: 0 up to
        ``reference_tiles``, then ``tail_scale * ln(n / reference_tiles)``."""
        if self.tail_scale <= 0 or self.reference_tiles <= 0 or n <= self.reference_tiles:
            return 0.0
        return self.tail_scale * math.log(n / self.reference_tiles)

    def flag_p(self, n: int) -> float:
        """The tile flag level on a slide of ``n`` assessed tiles: ``tile_flag_p`` moved up by the size shift."""
        return float(sigmoid(logit(self.tile_flag_p) + self.size_shift(n)))

    @classmethod
    def from_card(cls, card: dict) -> "SlideLevel | None":
        """The parameters recorded in a card, or None for a card without a (current) slide-level block."""
        block = card.get("slide_level")
        if not block or tuple(block.get("parameters", {}).get("features", ())) != FEATURES:
            return None
        p = block["parameters"]
        return cls(tuple(float(w) for w in p["weights"]), float(p["intercept"]), float(block["threshold"]),
                   float(block["tile_flag_p"]), int(p.get("second_look", 0)), float(p.get("tail_scale", 0.0)),
                   int(p.get("reference_tiles", 0)))

    def as_dict(self) -> dict:
        return {**asdict(self), "weights": list(self.weights), "features": list(FEATURES)}


@dataclass
class SlideAnswer:
    """A slide's answer: score, decision, per-row masks of the tiles assessed and flagged, the size rule's shift
    for this slide (logits) and the flag level it gives."""

    slide_score: float | None
    decision: str | None
    assessed: np.ndarray
    flagged: np.ndarray
    size_shift: float
    flag_p: float
    withheld: str | None = None  # why there is no decision (None when there is one)

    @property
    def tiles_assessed(self) -> int:
        return int(self.assessed.sum())

    @property
    def tiles_flagged(self) -> int:
        return int(self.flagged.sum())


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def unseen_tissue(frame: pd.DataFrame) -> tuple[float, dict[str, int]]:
    """The share of a slide's tissue tiles (all but glass) the quality gate kept from the model, and how many for
    each reason (none without a ``quality`` column)."""
    if "quality" not in frame.columns:
        return 0.0, {}
    quality = frame["quality"].astype(str)
    tissue = quality != BACKGROUND
    unseen = quality[tissue & (quality != OK)]
    return (len(unseen) / int(tissue.sum()) if tissue.any() else 0.0), unseen.value_counts().to_dict()


def assessed_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows that count: all of them, or those whose ``quality`` is ``ok`` when the frame has that column."""
    if "quality" in frame.columns:
        return (frame["quality"].astype(str) == "ok").to_numpy()
    return np.ones(len(frame), bool)


def best_adjacent_pair(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """The highest min(z_i, z_j) over tiles i, j that are neighbours on the grid (left-right or up-down);
    the lowest z when no two tiles touch."""
    if len(z) < 2:
        return float(z.min()) if len(z) else float(logit(0.0))
    step = grid_step(x, y)
    cols = np.rint((x - x.min()) / step).astype(int)
    rows = np.rint((y - y.min()) / step).astype(int)
    grid = np.full((rows.max() + 1, cols.max() + 1), -np.inf)
    grid[rows, cols] = z
    pairs = [np.minimum(grid[:, 1:], grid[:, :-1]), np.minimum(grid[1:], grid[:-1])]
    best = max((float(p.max()) for p in pairs if p.size), default=-np.inf)
    return best if np.isfinite(best) else float(z.min())


def grid_step(x: np.ndarray, y: np.ndarray) -> float:
    """The tile grid's step: the smallest gap between distinct x or y positions (1.0 for a single position)."""
    diffs = np.concatenate([np.diff(np.unique(x)), np.diff(np.unique(y))])
    diffs = diffs[diffs > 0]
    return float(diffs.min()) if len(diffs) else 1.0


def features(frame: pd.DataFrame, shift: float = 0.0) -> np.ndarray | None:
    """The ``FEATURES`` of a tiles frame's assessed tiles (columns ``x``, ``y``, ``p``), their logits read
    ``shift`` lower (the size rule), or None when none is assessed."""
    ok = assessed_rows(frame)
    if not ok.any():
        return None
    z = logit(frame["p"].to_numpy(float)[ok]) - shift
    top = np.sort(z)[::-1]
    pair = best_adjacent_pair(frame["x"].to_numpy(float)[ok], frame["y"].to_numpy(float)[ok], z)
    return np.array([top[:3].mean(), pair])


def score_of(f: np.ndarray, level: SlideLevel) -> float:
    """P(metastasis) for one slide's features."""
    return float(sigmoid(np.dot(level.weights, f) + level.intercept))


def answer(frame: pd.DataFrame, level: SlideLevel, warning: str | None = None) -> SlideAnswer:
    """The slide-level answer for a tiles frame (columns ``x``, ``y``, ``p``; ``quality`` optional); the quality
    gate's slide ``warning``, when it gives one, withholds the decision and the flags (see "No answer")."""
    ok = assessed_rows(frame)
    n = int(ok.sum())
    shift = level.size_shift(n)
    f = features(frame, shift)
    if f is None:
        return SlideAnswer(None, None, ok, np.zeros(len(frame), bool), shift, level.flag_p(n), NO_TILES)
    score = score_of(f, level)
    if warning:
        return SlideAnswer(score, None, ok, np.zeros(len(frame), bool), shift, level.flag_p(n), warning)
    p = frame["p"].to_numpy(float)
    # compared in logits, as the level was fitted: P near 1 has too few floats to move by a shift
    flagged = ok & (logit(p) - shift >= logit(level.tile_flag_p))
    positive = score >= level.threshold
    if positive:
        flagged[np.flatnonzero(ok)[np.argmax(p[ok])]] = True
        return SlideAnswer(score, POSITIVE, ok, flagged, shift, level.flag_p(n))
    share, reasons = unseen_tissue(frame)
    if share > UNSEEN_MAX:
        words = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
        return SlideAnswer(score, None, ok, flagged, shift, level.flag_p(n),
                           f"{share:.0%} of the slide's tissue tiles were not assessed ({words}): a metastasis there "
                           "would not be seen, so the slide is not called negative")
    return SlideAnswer(score, NEGATIVE, ok, flagged, shift, level.flag_p(n))
