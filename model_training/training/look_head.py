"""Fit a bundle's look head and record it in the card (``inference/look_head.py`` says what it is for).

A plain logistic regression on the pooled features of every training tile, averaged over its 8 dihedral views
(the look scores 8 views), with a weak penalty; Platt calibration and threshold on the validation split's
8-view features, as the tile head's TTA calibration. The network and the tile head stay as they are: the
bundle's files do not change, only its card.

Command: ``python -m model_training.cli.fit_look_head BUNDLE --data DIR`` (then ``slide_level --write-card``:
the slide-level answer rests on the look's scores).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from model_training.bundle.files import BundleError, write_card
from model_training.evaluation.metrics import fit_platt, summary, threshold_with_margin
from model_training.inference.look_head import CARD_KEY
from model_training.inference.predictor import Predictor
from model_training.training.head_refit import fit_head, labelled_splits, pooled_views

log = logging.getLogger(__name__)

LOOK_C = 100.0  # inverse L2 strength: nearly unpenalised (EXPERIMENTS.md, "Sixth round")


def fit_look_head(bundle: Path, data: str, *, c: float = LOOK_C, engine: str = "onnx", limit: int | None = None,
                  target_sensitivity: float = 0.95, command: str = "") -> dict:
    """Fit ``bundle``'s look head on ``data``'s training split, calibrate it on the validation split, write it
    into the bundle's card and return the card's entry (a ``HeadRefitError`` when a split cannot be used)."""
    pred = Predictor.load(bundle, warm_up=False, engine=engine)
    (train_src, (x, y, *_)), (_, (xv, yv, *_)) = labelled_splits(data, limit, None, "the look head")
    z_train, features = pooled_views(pred, x)
    kernel, bias = fit_head(features, y, np.ones(len(y)), c)
    z_tile, features_v = pooled_views(pred, xv)
    zv = features_v @ kernel + bias  # the mean of the 8 views' logits: the head is linear
    temperature, cal_bias = fit_platt(yv, zv)
    p = expit(zv / temperature + cal_bias)
    threshold = threshold_with_margin(yv, p, target_sensitivity)
    int8 = int8_agreement(Path(bundle), pred.card, xv, kernel, bias, (temperature, cal_bias, threshold), p)
    entry = {
        "purpose": "scores the 8 views of a slide's highest tiles in the slide-level answer's second look; "
                   "tiles are scored by the tile head",
        "method": "logistic regression on the pooled features averaged over the 8 dihedral views: logit = "
                  "features . kernel + bias; P = sigmoid(logit / temperature + calibration bias)",
        "settings": {"c": c, "sample_weights": "none"},
        "fitted_on": f"{train_src.description}: {len(y)} tiles, 8-view mean features from the {pred.engine.name} "
                     "engine",
        "kernel": [round(float(v), 7) for v in kernel], "bias": round(bias, 7),
        "calibration": {"method": "platt: sigmoid(logit / temperature + bias), 8-view mean logit",
                        "temperature": temperature, "bias": cal_bias, "threshold": threshold,
                        "threshold_rule": f"highest threshold at which the lower end of the bootstrap 95% CI of "
                                          f"validation sensitivity is >= {target_sensitivity}"},
        "validation": {**summary(yv, p, threshold), "tile_head_auc_tta": float(roc_auc_score(yv, z_tile)),
                       "training_auc": float(roc_auc_score(y, features @ kernel + bias)),
                       "training_auc_tile_head": float(roc_auc_score(y, z_train))},
        "int8_check": int8,
        "command": command,
    }
    card = pred.card
    card[CARD_KEY] = entry
    write_card(Path(bundle), card)
    log.info("look head: validation AUC (8 views) %.4f against the tile head's %.4f", entry["validation"]["auc"],
             entry["validation"]["tile_head_auc_tta"])
    return entry


def int8_agreement(bundle: Path, card: dict, x: np.ndarray, kernel: np.ndarray, bias: float,
                   calibration: tuple[float, float, float], p_float: np.ndarray) -> dict | None:
    """How the look head's calls on tiles ``x`` change when the int8 copy computes the features (the engine that
    scores slides by default): the share of same calls at its threshold and the P differences. None for a
    bundle without an int8 copy; the reason when this CPU cannot run it."""
    if not card.get("onnx_int8"):
        return None
    try:
        int8 = Predictor.load(bundle, warm_up=False, engine="onnx-int8")
    except BundleError as exc:
        return {"skipped": str(exc)}
    _, features = pooled_views(int8, x)
    temperature, cal_bias, threshold = calibration
    p = expit((features @ kernel + bias) / temperature + cal_bias)
    dp = np.abs(p - p_float)
    return {"engine": "onnx-int8", "tiles": int(len(x)), "views": 8,
            "same_decision": float(((p >= threshold) == (p_float >= threshold)).mean()),
            "max_abs_dp": float(dp.max()), "mean_abs_dp": float(dp.mean())}
