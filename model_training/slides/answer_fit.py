"""Fitting and measuring the slide-level answer on labelled case slides (``case_set``) scored by the slide
pipeline: a logistic regression on the slide features (``answer.FEATURES``), a sensitivity-first decision
threshold, a tile flag level, and the figures a lab reads (slide AUC, sensitivity and specificity with CIs,
flagged tiles on normal slides, metastases that keep a flagged tile).

The shipped answer is fitted on both halves of the case slides; its held-out figures come from 2-fold
cross-validation (fitted on each half, measured on the other, pooled): the more case slides the threshold rests
on, the less it moves between case sets (EXPERIMENTS.md, seventh round), without giving up a held-out
measurement. The threshold keeps a margin on both targets (``operating_point``): placed where the fit set just
reaches a sensitivity, it falls short of it on new slides half the time (fifteenth round)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from model_training.evaluation.metrics import auc_ci, rates_ci, threshold_for_specificity, threshold_with_margin
from model_training.slides.answer import FEATURES, SlideLevel, answer, assessed_rows, features, logit, score_of
from model_training.slides.batch import BatchJob, run_batch, worker_predictor
from model_training.slides.case_set import Case, build_case_set, load_cases
from model_training.slides.size_check import size_check

# The slide decision's targets: sensitivity 0.90 first, at a specificity of at least 0.70 (a tool that calls
# most normal slides suspicious is not read: at sensitivity 0.95 the held-out specificity fell to 0.39).
SENSITIVITY_TARGET = 0.90
SPECIFICITY_FLOOR = 0.70
# The tile flag level is the lowest P at which the fit set's normal slides show at most this many flags at
# the median (the target is 3: one leaves room for new slides).
FLAG_MEDIAN = 1
SECOND_LOOK = 16  # tiles per slide re-scored with TTA: the top 3 and their neighbours, with room to spare
# The size rule's tail scale is the mean excess of the normal tiles' logits over this quantile (the maximum-
# likelihood scale of an exponential tail); on the case slides it is steady from the 0.8 to the 0.95 quantile.
TAIL_QUANTILE = 0.9


def operating_point(y: np.ndarray, scores: np.ndarray, sensitivity: float = SENSITIVITY_TARGET,
                    specificity: float = SPECIFICITY_FLOOR) -> float:
    """The slide decision's threshold on fitted ``scores``: the highest at which the lower end of the bootstrap
    95% CI of sensitivity reaches ``sensitivity`` (the tile threshold's rule), raised where needed until the
    lower end of the Wilson 95% CI of specificity reaches ``specificity``."""
    return max(threshold_with_margin(y, scores, sensitivity), threshold_for_specificity(y, scores, specificity))


def fit(cases: list[Case], second_look: int = SECOND_LOOK, target: float = SENSITIVITY_TARGET,
        floor: float = SPECIFICITY_FLOOR) -> SlideLevel:
    """Fit the size rule on ``cases``' normal slides, the logistic regression on their features, the threshold
    by ``operating_point`` (sensitivity ``target`` with a margin, specificity ``floor`` with a margin), and the
    tile flag level where normal slides show ``FLAG_MEDIAN`` flags at the median."""
    y = np.array([c.truth for c in cases])
    sizes = [int(assessed_rows(c.tiles).sum()) for c in cases]
    rule = SlideLevel(second_look=second_look, tail_scale=tail_scale(cases),
                      reference_tiles=int(np.median(sizes)) if sizes else 0)
    f = [features(c.tiles, rule.size_shift(n)) for c, n in zip(cases, sizes)]
    keep = [i for i, v in enumerate(f) if v is not None]
    x = np.array([f[i] for i in keep])
    # light regularisation: two correlated features, a hundred-odd slides
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, y[keep])
    level = replace(rule, weights=tuple(float(w) for w in lr.coef_[0]), intercept=float(lr.intercept_[0]))
    scores = np.array([score_of(v, level) for v in x])
    return replace(level, threshold=operating_point(y[keep], scores, target, floor),
                   tile_flag_p=flag_level(cases, level))


def normal_logits(cases: list[Case]) -> np.ndarray:
    """The logits of the assessed tiles of ``cases``' normal slides."""
    parts = [logit(c.tiles["p"].to_numpy(float)[assessed_rows(c.tiles)]) for c in cases if c.truth == 0]
    return np.concatenate(parts) if parts else np.zeros(0)


def tail_scale(cases: list[Case], quantile: float = TAIL_QUANTILE) -> float:
    """The scale (logits) of the normal tiles' upper tail: their mean excess over ``quantile``; 0 without any."""
    z = normal_logits(cases)
    if len(z) < 20:  # too few tiles to speak of a tail: no size rule
        return 0.0
    u = np.quantile(z, quantile)
    excess = z[z > u] - u
    return float(excess.mean()) if len(excess) else 0.0


def flag_level(cases: list[Case], level: SlideLevel = SlideLevel(), median: int = FLAG_MEDIAN) -> float:
    """The lowest tile P at which the normal slides of ``cases`` show at most ``median`` assessed tiles at or
    above it (after ``level``'s size rule), at the median."""
    tops = []
    for c in cases:
        if c.truth == 0:
            ok = assessed_rows(c.tiles)
            z = np.sort(logit(c.tiles["p"].to_numpy(float)[ok]))[::-1] - level.size_shift(int(ok.sum()))
            tops.append(z[median] if len(z) > median else float(logit(0.0)))  # the (median+1)-th highest
    if not tops:
        return 0.5
    # the lowest P whose logit lies above the median slide's (median+1)-th tile: that slide then shows `median`
    level_z = float(np.quantile(tops, 0.5, method="higher"))  # of an even count, the upper middle one
    p = float(expit(level_z))
    for _ in range(64):  # a few floats up at most; beyond 1 - EPS the logit is flat and P stops here
        if logit(p) > level_z:
            break
        p = float(np.nextafter(p, 1.0))
    return p


def measure(cases: list[Case], level: SlideLevel | Sequence[SlideLevel]) -> dict:
    """Slide AUC (95% CI), sensitivity/specificity at the threshold (95% CIs), flagged tiles on negative
    slides (median, range) and the share of metastases with a flagged tumour tile; the same two flag figures
    for the tile decision alone, for comparison. ``level`` may be one per case (cross-validation: each case
    answered by the fit that did not see it)."""
    levels = [level] * len(cases) if isinstance(level, SlideLevel) else list(level)
    y = np.array([c.truth for c in cases])
    answers = [answer(c.tiles, lv) for c, lv in zip(cases, levels)]
    scores = np.array([0.0 if a.slide_score is None else a.slide_score for a in answers])  # nothing assessed
    auc, lo, hi = auc_ci(y, scores, n_boot=2000)
    # each slide against its own fit's threshold: a positive call is a margin >= 0
    margin = scores - np.array([lv.threshold for lv in levels])
    pos = margin >= 0
    out = {"slides": len(cases), "positive_slides": int(y.sum()), "auc": round(auc, 4),
           "auc_ci95": [round(lo, 4), round(hi, 4)],
           "sensitivity": round(float(pos[y == 1].mean()), 4), "specificity": round(float((~pos[y == 0]).mean()), 4),
           **{k: [round(v, 4) for v in ci] for k, ci in rates_ci(y, margin, 0.0, seed=0).items()}}
    out.update(_flags(cases, [a.flagged for a in answers], "flagged"))
    out.update(_flags(cases, [(c.tiles["decision"] == "tumour").to_numpy() for c in cases], "tile_decision"))
    return out


def _flags(cases: list[Case], flagged: list[np.ndarray], name: str) -> dict:
    neg = [int(f.sum()) for c, f in zip(cases, flagged) if c.truth == 0]
    kept = [c.keeps_a_flag(f) for c, f in zip(cases, flagged) if c.truth == 1]
    return {f"{name}_on_negatives_median": float(np.median(neg)) if neg else None,
            f"{name}_on_negatives_range": [min(neg), max(neg)] if neg else None,
            f"{name}_metastases_kept": f"{sum(kept)} of {len(kept)}"}


def card_block(level: SlideLevel, fitted: dict, measured: dict, how: dict, sensitivity: float = SENSITIVITY_TARGET,
               look_head: bool = False, specificity: float = SPECIFICITY_FLOOR) -> dict:
    """The model card's ``slide_level`` block: method, parameters, threshold and the figures behind them;
    ``look_head``: the second look was scored by the card's look head."""
    scorer = "8-view TTA scored by the card's look head" if look_head else "8-view TTA"
    return {"method": f"logistic regression on {', '.join(FEATURES)} of the assessed tiles' logits, after a "
                      f"second look ({scorer}) at each slide's {level.second_look} highest tiles; a tile is "
                      "flagged at P >= tile_flag_p, and the top tile of a slide called positive always is; on a "
                      "slide of N > reference_tiles assessed tiles the logits are read tail_scale * ln(N / "
                      "reference_tiles) lower, for the score and the flags alike",
            "parameters": {"features": list(FEATURES), "weights": list(level.weights), "intercept": level.intercept,
                           "second_look": level.second_look, "tail_scale": level.tail_scale,
                           "reference_tiles": level.reference_tiles},
            "threshold": level.threshold,
            "threshold_rule": threshold_rule(sensitivity, specificity),
            "tile_flag_p": level.tile_flag_p,
            "tile_flag_rule": f"lowest tile P at which the fit set's normal slides show {FLAG_MEDIAN} flag at the median",
            "size_rule": f"tail_scale: the mean excess of the fit set's normal tiles' logits over their "
                         f"{TAIL_QUANTILE} quantile; reference_tiles: the fit set's median assessed tiles per slide",
            "fit_set": fitted, "test_set": measured, "cases": how}


def threshold_rule(sensitivity: float = SENSITIVITY_TARGET, specificity: float = SPECIFICITY_FLOOR) -> str:
    """``operating_point`` in words, for the card."""
    return (f"highest slide_score threshold at which the lower end of the fit set's bootstrap 95% CI of sensitivity "
            f"is >= {sensitivity}, raised where needed until the lower end of the Wilson 95% CI of its specificity "
            f"is >= {specificity}")


def fit_and_measure(job: BatchJob, data: Path, work: Path, n: int, second_look: int = SECOND_LOOK,
                    seed: int = 26, sensitivity: float = SENSITIVITY_TARGET,
                    specificity: float = SPECIFICITY_FLOOR) -> dict:
    """Build ``n`` case slides from each half of ``data``'s validation split (unless there already), score
    them as ``job`` says (its ``out`` is ignored) with a ``second_look``, fit on both halves (the threshold by
    ``operating_point`` with ``sensitivity`` and ``specificity``), and measure by 2-fold cross-validation: fitted on each
    half, measured on the other, pooled (``test_set``; each fold apart in ``test_set_by_fold``), and on larger
    slides made of half 1's (``size_check``, answered by the fit on half 0); returns the card block."""
    settings = replace(job.settings, second_look=second_look)
    halves = []
    for half in (0, 1):
        folder = Path(work) / f"cases-h{half}"
        manifest = folder / "manifest.csv"
        if not manifest.exists():
            build_case_set(data, folder, n, half, seed)
        out = Path(work) / f"scored-h{half}"
        run_batch(pd.read_csv(manifest)["path"].tolist(), replace(job, out=str(out), settings=settings),
                  progress=False)
        halves.append(load_cases(manifest, out))
    folds = [fit(h, second_look, sensitivity, specificity) for h in halves]
    level = fit(halves[0] + halves[1], second_look, sensitivity, specificity)
    pred = worker_predictor(job)
    how = {"slides_per_half": n, "seed": seed, "source": "valid split, halved by sha256 of the patch id",
           "validation": "fitted on both halves; test_set: 2-fold cross-validation (each half answered by the "
                         "fit on the other, pooled)",
           "engine": pred.engine.name, "tta": job.settings.tta,
           "look_head": pred.look_head.fingerprint() if pred.look_head is not None else None}
    held_out = measure(halves[1] + halves[0], [folds[0]] * len(halves[1]) + [folds[1]] * len(halves[0]))
    block = card_block(level, measure(halves[0] + halves[1], level), {**held_out, "folds": 2}, how, sensitivity,
                       look_head=pred.look_head is not None, specificity=specificity)
    block["test_set_by_fold"] = {"fit on half 0, measured on half 1": measure(halves[1], folds[0]),
                                 "fit on half 1, measured on half 0": measure(halves[0], folds[1])}
    block["size_check"] = size_check(halves[1], folds[0])  # half 1's slides laid side by side, held out
    block["command"] = (f"python -m model_training.cli.slide_level --data PCAM_ROOT --work DIR --cases {n} "
                        f"--second-look {second_look} --sensitivity {sensitivity} --specificity {specificity} --seed {seed}"
                        f"{' --tta' if job.settings.tta else ''} --write-card")
    return block
