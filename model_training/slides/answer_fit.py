"""Fitting and measuring the slide-level answer on labelled case slides (``case_set``) scored by the slide
pipeline: Platt calibration of the top-k aggregate, a sensitivity-first decision threshold, and the figures a
lab reads (slide AUC, sensitivity and specificity with CIs, flagged tiles on normal slides, metastases that
keep a flagged tile)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model_training.evaluation.metrics import auc_ci, fit_platt, rates_ci, threshold_for_sensitivity
from model_training.slides.answer import SlideLevel, answer, assessed_rows, slide_score, top_k_logit

SENSITIVITY_TARGET = 0.95


@dataclass
class Case:
    """One scored case slide: its tiles (with ``label`` per tile where the slide's labels are known)."""

    slide: str
    truth: int
    tiles: pd.DataFrame


def load_cases(manifest: Path, out_dir: Path) -> list[Case]:
    """Cases of ``manifest`` (from ``build_case_set``) whose tiles the slide pipeline wrote to ``out_dir``."""
    cases = []
    for row in pd.read_csv(manifest).to_dict("records"):
        tiles = pd.read_csv(Path(out_dir) / f"{row['slide']}.tiles.csv")
        labels = pd.read_csv(Path(row["path"]).with_suffix(".csv"))[["x", "y", "label"]]
        tiles = tiles.merge(labels, on=["x", "y"], how="left").fillna({"label": 0})
        cases.append(Case(row["slide"], int(row["truth"]), tiles))
    return cases


def fit(cases: list[Case], k: int, target: float = SENSITIVITY_TARGET) -> SlideLevel:
    """Platt-calibrate the top-``k`` logit on ``cases`` and put the threshold where sensitivity first
    reaches ``target`` (the highest such threshold: the best specificity at that sensitivity)."""
    y = np.array([c.truth for c in cases])
    z = np.array([top_k_logit(c.tiles["p"].to_numpy()[assessed_rows(c.tiles)], k) for c in cases])
    temperature, bias = fit_platt(y, z)
    level = SlideLevel(k, float(temperature), float(bias), 0.5)
    scores = np.array([slide_score(c.tiles["p"].to_numpy()[assessed_rows(c.tiles)], level) for c in cases])
    return SlideLevel(k, float(temperature), float(bias), float(threshold_for_sensitivity(y, scores, target)))


def measure(cases: list[Case], level: SlideLevel, tile_threshold: float | None = None) -> dict:
    """Slide AUC (95% CI), sensitivity/specificity at the threshold (95% CIs), flagged tiles on negative
    slides (median, range) and the share of metastases with a flagged tumour tile; with ``tile_threshold`` the
    same two flag figures for the tile decision alone, for comparison."""
    y = np.array([c.truth for c in cases])
    answers = [answer(c.tiles, level) for c in cases]
    scores = np.array([a.slide_score for a in answers])
    auc, lo, hi = auc_ci(y, scores, n_boot=2000)
    pos = scores >= level.threshold
    out = {"slides": len(cases), "positive_slides": int(y.sum()), "auc": round(auc, 4),
           "auc_ci95": [round(lo, 4), round(hi, 4)],
           "sensitivity": round(float(pos[y == 1].mean()), 4), "specificity": round(float((~pos[y == 0]).mean()), 4),
           **{k: [round(v, 4) for v in ci] for k, ci in rates_ci(y, scores, level.threshold, seed=0).items()}}
    out.update(_flags(cases, [a.flagged for a in answers], "flagged"))
    if tile_threshold is not None:
        out.update(_flags(cases, [c.tiles["p"].to_numpy() >= tile_threshold for c in cases], "tile_decision"))
    return out


def _flags(cases: list[Case], flagged: list[np.ndarray], name: str) -> dict:
    neg = [int(f.sum()) for c, f in zip(cases, flagged) if c.truth == 0]
    kept = [bool((f & (c.tiles["label"].to_numpy() == 1)).any()) for c, f in zip(cases, flagged) if c.truth == 1]
    return {f"{name}_on_negatives_median": float(np.median(neg)) if neg else None,
            f"{name}_on_negatives_range": [min(neg), max(neg)] if neg else None,
            f"{name}_metastases_kept": f"{sum(kept)} of {len(kept)}"}
