"""Fitting and measuring the slide-level answer on labelled case slides (``case_set``) scored by the slide
pipeline: Platt calibration of the top-k aggregate, a sensitivity-first decision threshold, and the figures a
lab reads (slide AUC, sensitivity and specificity with CIs, flagged tiles on normal slides, metastases that
keep a flagged tile)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from model_training.evaluation.metrics import auc_ci, fit_platt, rates_ci, threshold_for_sensitivity
from model_training.slides.answer import SlideLevel, answer, assessed_rows, slide_score, top_k_logit
from model_training.slides.batch import BatchJob, run_batch, worker_predictor
from model_training.slides.case_set import build_case_set

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
    assessed = [c.tiles["p"].to_numpy()[assessed_rows(c.tiles)] for c in cases]
    z = np.array([top_k_logit(p, k) for p in assessed])
    temperature, bias = fit_platt(y, z)
    level = SlideLevel(k, float(temperature), float(bias), 0.5)
    scores = np.array([slide_score(p, level) for p in assessed])
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


def card_block(level: SlideLevel, fitted: dict, measured: dict, how: dict) -> dict:
    """The model card's ``slide_level`` block: method, parameters, threshold and the figures behind them."""
    return {"method": f"mean logit of the top {level.k} assessed tiles, Platt-calibrated; a tile is flagged "
                      "when its logit reaches the logit that puts a slide at the threshold",
            "parameters": {"k": level.k, "temperature": level.temperature, "bias": level.bias},
            "threshold": level.threshold,
            "threshold_rule": f"highest slide_score threshold with sensitivity >= {SENSITIVITY_TARGET} on the fit set",
            "tile_flag_p": round(float(1 / (1 + np.exp(-level.tile_flag_logit()))), 6),
            "fit_set": fitted, "test_set": measured, "cases": how}


def fit_and_measure(job: BatchJob, card: dict, data: Path, work: Path, n: int, k: int, seed: int = 26) -> dict:
    """Build ``n`` case slides from each half of ``data``'s validation split (unless there already), score
    them as ``job`` says (its ``out`` is ignored), fit on half 0 and measure on half 1; returns the card block."""
    halves = []
    for half in (0, 1):
        folder = Path(work) / f"cases-h{half}"
        manifest = folder / "manifest.csv"
        if not manifest.exists():
            build_case_set(data, folder, n, half, seed)
        out = Path(work) / f"scored-h{half}"
        run_batch(pd.read_csv(manifest)["path"].tolist(), replace(job, out=str(out)), progress=False)
        halves.append(load_cases(manifest, out))
    level = fit(halves[0], k)
    mode = "tta" if job.settings.tta else "single"
    tile_thr = float(card.get("calibration", {}).get(mode, {}).get("threshold", 0.5))
    how = {"slides_per_half": n, "seed": seed, "source": "valid split, halved by sha256 of the patch id",
           "engine": worker_predictor(job).engine.name, "tta": job.settings.tta, "tile_threshold": tile_thr}
    block = card_block(level, measure(halves[0], level, tile_thr), measure(halves[1], level, tile_thr), how)
    block["command"] = (f"python -m model_training.cli.slide_level --data PCAM_ROOT --work DIR --cases {n} --k {k} "
                        f"--seed {seed}{' --tta' if job.settings.tta else ''} --write-card")
    return block
