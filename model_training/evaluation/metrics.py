"""Classification metrics, threshold choice and probability calibration (sklearn/scipy underneath)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit
from scipy.stats import binomtest
from sklearn import metrics as skm


def auc_ci(y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """ROC-AUC with a percentile bootstrap 95% confidence interval."""
    y, p = np.asarray(y), np.asarray(p)
    auc = float(skm.roc_auc_score(y, p))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            boots.append(skm.roc_auc_score(y[idx], p[idx]))
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
    return auc, float(lo), float(hi)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width probability bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Confusion-matrix counts and the rates a pathologist reads at one operating point."""
    y, pred = np.asarray(y).astype(int), (np.asarray(p) >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    def div(a, b):
        return float(a / b) if b else float("nan")
    return {"threshold": float(threshold), "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn),
            "accuracy": div(tp + tn, len(y)), "sensitivity": div(tp, tp + fn), "specificity": div(tn, tn + fp),
            "precision": div(tp, tp + fp), "npv": div(tn, tn + fn),
            "f1": float(skm.f1_score(y, pred, zero_division=0))}


def nll(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood of binary labels under probabilities ``p``."""
    return float(skm.log_loss(y, np.clip(p, eps, 1 - eps), labels=[0, 1]))


def summary(y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int = 1000) -> dict:
    """Everything the model card and the evaluation table report, for one set of probabilities."""
    auc, lo, hi = auc_ci(y, p, n_boot=n_boot)
    return {"n": int(len(y)), "positives": int(np.sum(y)), "auc": auc, "auc_ci95": [lo, hi], "nll": nll(y, p),
            "ece": expected_calibration_error(y, p), "brier": float(skm.brier_score_loss(y, p)),
            "at_threshold": at_threshold(y, p, threshold), "at_0.5": at_threshold(y, p, 0.5)}


def fit_temperature(y: np.ndarray, logits: np.ndarray) -> float:
    """Temperature T minimising validation NLL of sigmoid(logit / T) (Guo et al. 2017)."""
    y, z = np.asarray(y, float), np.asarray(logits, float)

    def nll(log_t: float) -> float:
        q = np.clip(expit(z / np.exp(log_t)), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def fit_platt(y: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """Temperature T and bias b minimising validation NLL of sigmoid(logit / T + b) (Platt scaling).

    The bias absorbs a shift of the logits between training and validation slides (stain, scanner,
    tumour prevalence) that a temperature alone cannot; with b = 0 this is temperature scaling.
    """
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(logits, float).reshape(-1, 1)
    lr = LogisticRegression(C=np.inf).fit(z, np.asarray(y).astype(int))  # C=inf: no regularisation
    slope = float(lr.coef_[0, 0])
    if slope <= 0:  # a model no better than chance: keep the ranking, fall back to temperature only
        return fit_temperature(y, logits), 0.0
    return 1.0 / slope, float(lr.intercept_[0])


def crossfit_nll(y: np.ndarray, logits: np.ndarray, method: str = "platt", folds: int = 5, seed: int = 0) -> float:
    """Out-of-fold NLL of a calibration fitted on the other folds: what the calibration earns on tiles it
    was not fitted to (the in-sample NLL flatters a fitted bias slightly)."""
    from sklearn.model_selection import StratifiedKFold

    y, z = np.asarray(y), np.asarray(logits, float)
    p = np.empty(len(z))
    for fit_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y):
        if method == "platt":
            t, b = fit_platt(y[fit_idx], z[fit_idx])
        else:
            t, b = fit_temperature(y[fit_idx], z[fit_idx]), 0.0
        p[test_idx] = expit(z[test_idx] / t + b)
    return nll(y, p)


def threshold_for_sensitivity(y: np.ndarray, p: np.ndarray, target: float = 0.95) -> float:
    """The highest threshold whose sensitivity is at least ``target`` (best specificity at that recall)."""
    # every threshold: sklearn's default drops those inside a run of positives, and would return the run's lowest
    fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=False)
    ok = np.flatnonzero(tpr >= target)
    t = float(thr[ok[0]])
    return min(t, 1.0)


def threshold_with_margin(y: np.ndarray, p: np.ndarray, target: float = 0.95, n_boot: int = 2000,
                          seed: int = 0) -> float:
    """The highest threshold at which the lower end of the bootstrap 95% CI of sensitivity is >= ``target``.

    A threshold fitted to reach ``target`` exactly on the validation tiles reaches it on new slides only half
    the time. Each bootstrap resample of the positives has its own threshold for ``target``; taking the 2.5th
    percentile of those keeps sensitivity >= ``target`` in 97.5% of resamples, a margin for tile-sampling
    noise (not for a shift between sites: that needs ``recalibrate`` on the site's own tiles).
    """
    pos = np.sort(np.asarray(p, float)[np.asarray(y) == 1])
    if len(pos) == 0:
        raise ValueError("threshold_with_margin needs positive tiles")
    rng = np.random.default_rng(seed)
    k = int(np.floor((1.0 - target) * len(pos)))  # tiles allowed below the threshold in a resample
    boots = np.sort(rng.choice(pos, (n_boot, len(pos)), replace=True), axis=1)[:, k]
    return float(min(np.percentile(boots, 2.5), threshold_for_sensitivity(y, p, target)))


def threshold_for_specificity(y: np.ndarray, p: np.ndarray, floor: float = 0.70, confidence: float = 0.95) -> float:
    """The lowest threshold (the most sensitive) at which the lower end of the Wilson ``confidence`` interval of
    specificity is >= ``floor``; a score is called positive at or above it. Where no threshold gets there (too
    few negatives), the lowest that calls no negative positive; a ``floor`` of 0 or less: minus infinity.

    The specificity of a threshold fitted on a few hundred negatives moves by a few points on the next few
    hundred; the interval's lower end keeps that much room."""
    neg = np.sort(np.asarray(p, float)[np.asarray(y) == 0])
    if len(neg) == 0:
        raise ValueError("threshold_for_specificity needs negatives")
    if floor <= 0:
        return float("-inf")
    n = len(neg)
    for k in range(1, n + 1):  # k negatives below the threshold; the bound rises with k
        if binomtest(k, n).proportion_ci(confidence, method="wilson").low >= floor:
            break
    # just above the k-th lowest negative, so that exactly those k (and their ties) fall below it
    return float(np.nextafter(neg[k - 1], np.inf))


def rates_ci(y: np.ndarray, p: np.ndarray, threshold: float, n_boot: int = 2000,
             seed: int = 0) -> dict[str, list[float]]:
    """Bootstrap 95% CIs of sensitivity and specificity at ``threshold`` (positives and negatives resampled
    separately, as the two rates depend on one class each)."""
    y, p = np.asarray(y), np.asarray(p, float)
    rng = np.random.default_rng(seed)
    out = {}
    for name, cls, hit in (("sensitivity", 1, lambda s: s >= threshold), ("specificity", 0, lambda s: s < threshold)):
        h = hit(p[y == cls]).astype(float)
        if len(h) == 0:
            out[f"{name}_ci95"] = [float("nan"), float("nan")]
            continue
        means = rng.choice(h, (n_boot, len(h)), replace=True).mean(axis=1)
        out[f"{name}_ci95"] = [float(v) for v in np.percentile(means, [2.5, 97.5])]
    return out
