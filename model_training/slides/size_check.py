"""How the slide-level answer holds on slides larger than the case slides it was fitted on.

Larger slides are made from the held-out case slides themselves: ``k`` normal slides laid side by side make a
normal slide of about ``k`` times the tiles, and a slide with a metastasis plus ``k - 1`` normal slides a
larger slide with the same metastasis. Each size is read with the card's level and with the same level
without its size rule, so the rule's effect is measured, not assumed. The patches of a half repeat across
its case slides, so beyond a few hundred tiles the larger slides hold the same patches again: the check
speaks for sizes up to the factors it is run with, not for a whole scanned lymph node.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from model_training.bundle.contract import TILE
from model_training.slides.answer import SlideLevel, answer, assessed_rows, grid_step
from model_training.slides.case_set import Case

FACTORS = (1, 2, 4, 8)


def side_by_side(cases: list[Case]) -> Case:
    """One case whose tiles are those of ``cases``, each moved right of the previous one with a gap, so that
    no tile of one touches a tile of another."""
    parts, x0 = [], 0.0
    for c in cases:
        tiles = c.tiles.copy()
        step = grid_step(tiles["x"].to_numpy(float), tiles["y"].to_numpy(float)) if len(tiles) > 1 else float(TILE)
        tiles["x"] = tiles["x"] - tiles["x"].min() + x0
        parts.append(tiles)
        x0 = float(tiles["x"].max()) + 2 * step
    return Case("+".join(c.slide for c in cases), max(c.truth for c in cases), pd.concat(parts, ignore_index=True))


def larger_slides(cases: list[Case], k: int) -> list[Case]:
    """Normal slides of ``k`` normal cases each (disjoint groups), and each metastasis case with ``k - 1``
    normal cases (taken in turn); none when there are fewer than ``k`` normal cases."""
    normal = [c for c in cases if c.truth == 0]
    positive = [c for c in cases if c.truth == 1]
    if len(normal) < k:  # not one normal slide of that size
        return []
    out = [side_by_side(normal[i:i + k]) for i in range(0, len(normal) - k + 1, k)]
    for j, c in enumerate(positive):
        out.append(side_by_side([c] + [normal[(j * (k - 1) + i) % len(normal)] for i in range(k - 1)]))
    return out


def read_at_size(cases: list[Case], level: SlideLevel) -> dict:
    """Normal slides called positive and their flags (median), metastases called and keeping a flag."""
    answers = [answer(c.tiles, level) for c in cases]
    neg = [(a, c) for a, c in zip(answers, cases) if c.truth == 0]
    pos = [(a, c) for a, c in zip(answers, cases) if c.truth == 1]
    kept = [c.keeps_a_flag(a.flagged) for a, c in pos]
    return {"normal_called_positive": round(float(np.mean([a.decision == "metastasis" for a, _ in neg])), 3),
            "normal_flags_median": float(np.median([a.tiles_flagged for a, _ in neg])),
            "metastases_called": round(float(np.mean([a.decision == "metastasis" for a, _ in pos])), 3),
            "metastases_keeping_a_flag": round(float(np.mean(kept)), 3)}


def size_check(cases: list[Case], level: SlideLevel, factors: tuple[int, ...] = FACTORS) -> list[dict]:
    """For each factor: the larger slides' median assessed tiles, and ``read_at_size`` with the size rule and
    without it."""
    plain = replace(level, tail_scale=0.0, reference_tiles=0)
    rows = []
    for k in factors:
        big = larger_slides(cases, k)
        if not big:
            continue
        tiles = [int(assessed_rows(c.tiles).sum()) for c in big if c.truth == 0]
        rows.append({"factor": k, "normal_slides": len(tiles), "metastasis_slides": len(big) - len(tiles),
                     "assessed_tiles_median": float(np.median(tiles)),
                     "with_size_rule": read_at_size(big, level), "without": read_at_size(big, plain)})
    return rows
