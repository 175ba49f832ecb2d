"""Choosing a quiz's tiles: a class balance, optionally the tiles the model found hard, a seed.

Pure functions of the candidate pool: the same pool, size, balance, hard flag and seed always give the same
tiles in the same order. The quiz then stores that list, so every student sees it whatever changes later.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from model_training.bundle.files import VAL_PRED_FILE
from model_training.inference.predictor import REVIEW_MARGIN

UNSURE_MARGIN = REVIEW_MARGIN  # "unsure": as close to the threshold as the review queue's flag


class SelectionError(ValueError):
    """The pool cannot fill the quiz asked for; the message says what is missing."""


def hard_mask(labels: np.ndarray, p: np.ndarray, threshold: float, margin: float = UNSURE_MARGIN) -> np.ndarray:
    """Tiles the model got wrong at ``threshold`` or scored within ``margin`` of it."""
    labels, p = np.asarray(labels), np.asarray(p, float)
    wrong = (p >= threshold) != (labels == 1)
    return wrong | (np.abs(p - threshold) < margin)


def class_counts(size: int, balance: float) -> tuple[int, int]:
    """(tumour, normal) tiles for a quiz of ``size`` with a tumour fraction ``balance``."""
    n_pos = int(round(size * float(balance)))
    return n_pos, size - n_pos


def choose(pool: pd.DataFrame, size: int, balance: float, *, hard: bool, seed: int,
           threshold: float) -> pd.DataFrame:
    """``size`` rows of ``pool`` (columns id, label, p) in quiz order, with ``hard`` tiles first per class."""
    if size < 1:
        raise SelectionError("A quiz needs at least one tile.")
    pool = pool.sort_values("id", kind="stable").reset_index(drop=True)  # independent of file listing order
    rng = np.random.default_rng(int(seed))
    is_hard = hard_mask(pool["label"].to_numpy(), pool["p"].to_numpy(), threshold)
    picked = []
    for label, n in zip((1, 0), class_counts(size, balance)):
        idx = np.flatnonzero(pool["label"].to_numpy() == label)
        have = len(idx)
        if n > have:
            name = "tumour" if label == 1 else "normal"
            raise SelectionError(f"The source has {have} {name} tiles; this quiz needs {n}. Choose fewer tiles "
                                 "or another class balance.")
        order = rng.permutation(idx)
        if hard:  # stable: hard tiles first, each group still in its random order
            order = order[np.argsort(~is_hard[order], kind="stable")]
        picked.append(order[:n])
    chosen = np.concatenate(picked)
    return pool.iloc[rng.permutation(chosen)].reset_index(drop=True)


MAX_SCORED_NOW = 512  # tiles without a stored score that creating one quiz may score


def bundle_scores(bundle) -> pd.DataFrame:
    """The bundle's own ``val_predictions.csv`` (id, p; 8-view TTA), or an empty frame when it has none."""
    try:
        # float32 as written: the threshold is one of these values and must stay on the same side of it
        vp = pd.read_csv(bundle / VAL_PRED_FILE, usecols=["id", "p"], dtype={"id": str, "p": np.float32})
    except (OSError, ValueError):
        return pd.DataFrame({"id": pd.Series(dtype=str), "p": pd.Series(dtype=float)})
    return vp.drop_duplicates("id")


def candidate_pool(ids: list[str], labels: np.ndarray, scores: pd.DataFrame, score_missing=None,
                   seed: int = 0) -> pd.DataFrame:
    """(id, label, p) of the source's labelled tiles with a model score.

    Scores come from ``scores`` (the bundle scored the whole validation split when it was trained); when it
    misses tiles, up to ``MAX_SCORED_NOW`` of them (a seeded sample) are scored with ``score_missing(ids)``.
    """
    df = pd.DataFrame({"id": [str(i) for i in ids], "label": np.asarray(labels, int)})
    df = df[df["label"] >= 0].merge(scores[["id", "p"]], on="id", how="left")
    missing = df.index[df["p"].isna()]
    if len(missing) and score_missing is not None:
        rng = np.random.default_rng(int(seed))
        take = np.sort(rng.choice(missing, min(len(missing), MAX_SCORED_NOW), replace=False))
        df.loc[take, "p"] = np.asarray(score_missing(df.loc[take, "id"].tolist()), float)
    return df.dropna(subset=["p"]).reset_index(drop=True)
