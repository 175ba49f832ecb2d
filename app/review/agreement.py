"""Reader agreement: with the model (Cohen's kappa), with the ground truth (sensitivity, specificity) and
between readers (Cohen's kappa for pairs, Fleiss' kappa for more), each with a bootstrap 95% CI over items.

A reader's call on an item is tumour or normal: ``agree`` takes the model decision they saw, ``disagree``
the other one; ``unsure`` is no call and is left out (and counted).
"""
from __future__ import annotations

from itertools import combinations

import krippendorff
import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from model_training.bundle.disclaimer import DISCLAIMER
from model_training.data.spreadsheet import csv_bytes

BOOT = 2000
SEED = 0  # fixed: the same reviews give the same intervals


def reader_calls(reviews: pd.DataFrame) -> pd.Series:
    """1 (tumour), 0 (normal) or NaN (unsure) per review, from the decision and the model decision seen."""
    model = (reviews["model_decision"] == "tumour").astype(float)
    call = np.where(reviews["decision"] == "agree", model, 1.0 - model)
    return pd.Series(np.where(reviews["decision"] == "unsure", np.nan, call), index=reviews.index)


def _kappa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's kappa of two binary ratings along the last axis (vectorised for the bootstrap)."""
    po = (a == b).mean(-1)
    pa, pb = a.mean(-1), b.mean(-1)
    pe = pa * pb + (1 - pa) * (1 - pb)
    varies = (pa > 0) & (pa < 1) & (pb > 0) & (pb < 1)  # a rating that never varies leaves kappa undefined
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(varies & (pe < 1), (po - pe) / (1 - pe), np.nan)


def bootstrap_ci(stat, n: int, boot: int = BOOT, seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% CI of ``stat(idx)`` over ``boot`` resamples of the ``n`` items (NaN draws dropped)."""
    if n < 2:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, n, (boot, n))
    vals = np.asarray(stat(idx), float)
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def cohen(a, b) -> tuple[float, float, float]:
    """Cohen's kappa of two binary ratings of the same items and its bootstrap 95% CI."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(set(a.tolist())) < 2 or len(set(b.tolist())) < 2:
        k = float("nan")  # a rating that never varies (say, the model called every tile tumour): undefined
    else:
        k = float(cohen_kappa_score(a, b))
    lo, hi = bootstrap_ci(lambda idx: _kappa(a[idx], b[idx]), len(a))
    return k, lo, hi


def fleiss(counts) -> float:
    """Fleiss' kappa of an items × categories table of how many raters chose each category (equal row sums)."""
    counts = np.asarray(counts, float)
    n_items, m = counts.shape[0], counts.sum(1)
    if n_items == 0 or not np.allclose(m, m[0]) or m[0] < 2:
        return float("nan")
    m = m[0]
    p_i = ((counts ** 2).sum(1) - m) / (m * (m - 1))
    p_j = counts.sum(0) / (n_items * m)
    pe = (p_j ** 2).sum()
    return float((p_i.mean() - pe) / (1 - pe)) if pe < 1 else float("nan")


def _current(reviews: pd.DataFrame) -> pd.DataFrame:
    df = reviews.assign(call=reader_calls(reviews)) if len(reviews) else reviews.assign(call=[])
    return df


def vs_model(reviews: pd.DataFrame) -> pd.DataFrame:
    """Per reader: reviews, agree / disagree / unsure counts, Cohen's kappa with the model and its CI."""
    df, rows = _current(reviews), []
    for reader, g in df.groupby("reviewer", sort=True):
        called = g.dropna(subset=["call"])
        if "item_quality" in called:  # the model made no call on a tile its quality gate did not assess
            called = called[called["item_quality"].isna() | (called["item_quality"] == "ok")]
        model = (called["model_decision"] == "tumour").astype(float).to_numpy()
        k, lo, hi = cohen(called["call"].to_numpy(), model)
        counts = g["decision"].value_counts()
        rows.append({"reader": reader, "reviews": len(g), "agree": int(counts.get("agree", 0)),
                     "disagree": int(counts.get("disagree", 0)), "unsure": int(counts.get("unsure", 0)),
                     "n": len(called), "kappa": k, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["reader", "reviews", "agree", "disagree", "unsure", "n", "kappa",
                                       "ci_low", "ci_high"])


def wilson(hits: int, n: int) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion ``hits / n`` (NaN for none): exact-enough at the small counts
    and the rates near 1 of reader studies, where a bootstrap interval is too narrow and lopsided."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(hits), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def vs_truth(reviews: pd.DataFrame) -> pd.DataFrame:
    """Per reader, on reviewed items with a ground-truth label: sensitivity and specificity with Wilson CIs."""
    df, rows = _current(reviews), []
    df = df[df["label"].notna()].dropna(subset=["call"]) if len(df) else df
    for reader, g in df.groupby("reviewer", sort=True):
        y, call = g["label"].astype(int).to_numpy(), g["call"].astype(int).to_numpy()
        pos, neg = (call[y == 1] == 1).astype(float), (call[y == 0] == 0).astype(float)
        sens = float(pos.mean()) if len(pos) else float("nan")
        spec = float(neg.mean()) if len(neg) else float("nan")
        s_lo, s_hi = wilson(int(pos.sum()), len(pos))
        p_lo, p_hi = wilson(int(neg.sum()), len(neg))
        rows.append({"reader": reader, "n": len(g), "tumour": len(pos), "normal": len(neg),
                     "sensitivity": sens, "sens_low": s_lo, "sens_high": s_hi,
                     "specificity": spec, "spec_low": p_lo, "spec_high": p_hi})
    return pd.DataFrame(rows, columns=["reader", "n", "tumour", "normal", "sensitivity", "sens_low", "sens_high",
                                       "specificity", "spec_low", "spec_high"])


def _calls_by_item(reviews: pd.DataFrame) -> pd.DataFrame:
    """Items × readers table of calls (NaN: not reviewed or unsure)."""
    df = _current(reviews)
    if not len(df):
        return pd.DataFrame()
    return df.pivot_table(index="item_id", columns="reviewer", values="call", aggfunc="last")


def between_readers(reviews: pd.DataFrame) -> pd.DataFrame:
    """Per pair of readers, on the items both called: Cohen's kappa with its CI, and raw agreement."""
    table, rows = _calls_by_item(reviews), []
    for a, b in combinations(sorted(table.columns), 2):
        both = table[[a, b]].dropna()
        if not len(both):
            continue  # two readers with no item in common: nothing to compare
        k, lo, hi = cohen(both[a].to_numpy(), both[b].to_numpy())
        rows.append({"reader_a": a, "reader_b": b, "n": len(both),
                     "agreement": float((both[a] == both[b]).mean()) if len(both) else float("nan"),
                     "kappa": k, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["reader_a", "reader_b", "n", "agreement", "kappa", "ci_low", "ci_high"])


def alpha(calls: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) of a readers × items array of calls with NaN for no call; NaN when it
    is undefined (fewer than two calls on every item, or one value only)."""
    usable = calls[:, (~np.isnan(calls)).sum(0) >= 2] if calls.size else calls
    if usable.size == 0 or len(np.unique(usable[~np.isnan(usable)])) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=usable, level_of_measurement="nominal"))


def fleiss_all(reviews: pd.DataFrame) -> dict | None:
    """More than two readers: Fleiss' kappa over the items every reader called, and Krippendorff's alpha over
    every item at least two readers called (it keeps the items a reader skipped), each with its CI; else None."""
    table = _calls_by_item(reviews)
    if table.shape[1] < 3:
        return None
    full = table.dropna()
    counts = np.stack([(full == 0).sum(1), (full == 1).sum(1)], axis=1) if len(full) else np.zeros((0, 2))
    lo, hi = bootstrap_ci(lambda idx: [fleiss(counts[i]) for i in idx], len(counts), boot=500)
    calls = table.to_numpy(float).T  # readers × items
    calls = calls[:, (~np.isnan(calls)).sum(0) >= 2]
    a_lo, a_hi = bootstrap_ci(lambda idx: [alpha(calls[:, i]) for i in idx], calls.shape[1], boot=500)
    if not len(full) and not calls.shape[1]:
        return None  # no item two readers called: an empty row would only clutter
    return {"readers": table.shape[1], "n": len(full), "kappa": fleiss(counts), "ci_low": lo, "ci_high": hi,
            "alpha": alpha(calls), "alpha_n": calls.shape[1], "alpha_low": a_lo, "alpha_high": a_hi}


def tables_csv(with_model: pd.DataFrame, with_truth: pd.DataFrame, readers: pd.DataFrame,
               all_readers: dict | None) -> bytes:
    """The Agreement page's tables (``vs_model``, ``vs_truth``, ``between_readers``, ``fleiss_all``) as one CSV
    with a ``table`` column saying which, research-use line first."""
    stats = pd.concat([with_model.assign(table="reader vs model"), with_truth.assign(table="reader vs ground truth"),
                       readers.assign(table="reader vs reader")]
                      + ([pd.DataFrame([{**all_readers, "table": "Fleiss"}])] if all_readers else []),
                      ignore_index=True)
    return csv_bytes(stats, f"{DISCLAIMER} PathReview reader agreement.")
