"""Hard-negative head refit: a trained model's last layer fitted again on its own pooled features.

The backbone stays as trained. The ``logit`` layer (pooled features → logit) is replaced by a logistic
regression fitted on the **training** split: each tile's pooled features averaged over its 8 dihedral views
(unaugmented, as the model scores), with the training negatives the source model calls tumour (mean logit
above ``hard_negative_logit``) weighted ``hard_negative_weight`` times. Calibration, threshold, exports and
figures are then re-fitted on validation as for any new bundle (``finalize_bundle``).

Why: a slide is as good as its highest-scoring normal tile, so the tail of normal tiles scored as tumour
decides the slide-level answer. The refit lowers that tail (EXPERIMENTS.md, "Third round: hard-negative head
refit").

Command: ``python -m model_training.cli.refit_head --bundle runs/pathcnn-e30 --data DIR --out assets/pathcnn-v6``
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from model_training.bundle.contract import LOGIT
from model_training.data.subsets import load_split
from model_training.export.int8 import calibration_tiles
from model_training.inference.predictor import N_VIEWS, Predictor, dihedral_views
from model_training.training.recalibrate import write_derived

log = logging.getLogger(__name__)

class HeadRefitError(ValueError):
    """The refit cannot start or its result is inconsistent; the message says why."""


@dataclass(frozen=True)
class HeadRefitSettings:
    """How the new head is fitted."""

    c: float = 0.3  # inverse L2 strength of the logistic regression on the raw pooled features
    hard_negative_weight: float = 3.0
    hard_negative_logit: float = 0.0  # a training negative above this mean logit counts as hard (P > 0.5)

    def to_dict(self) -> dict:
        return asdict(self)


def labelled_splits(data: str, limit: int | None, val_limit: int | None, what: str) -> tuple[tuple, tuple]:
    """(source, arrays) of ``data``'s train and valid splits (``limit`` / ``val_limit`` tiles, stratified), each
    held in RAM with tiles of both classes, or a ``HeadRefitError`` naming the split that is not and ``what``
    needed it."""
    splits = (load_split(data, "train", limit, 0, False), load_split(data, "valid", val_limit, 0, False))
    for name, (_, arr) in zip(("train", "valid"), splits):
        if arr is None or len(set(arr[1].tolist())) < 2:
            raise HeadRefitError(f"{data}/{name}: {what} needs tiles of both classes held in RAM")
    return splits


def pooled_views(pred: Predictor, x: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean logit and mean pooled features over the 8 dihedral views of each tile: (N,), (N, D)."""
    zs, fs = [], []
    for i in range(0, len(x), chunk):
        views = dihedral_views(x[i:i + chunk]).reshape(-1, *x.shape[1:])
        z, f = pred.logits_and_features(views)
        if f is None:
            raise HeadRefitError("the scoring engine gives no pooled features")
        zs.append(z.reshape(-1, N_VIEWS).mean(axis=1))
        fs.append(f.reshape(-1, N_VIEWS, f.shape[-1]).mean(axis=1))
    return np.concatenate(zs), np.concatenate(fs)


def hard_negatives(y: np.ndarray, z: np.ndarray, settings: HeadRefitSettings) -> np.ndarray:
    """Which tiles are negatives the source model calls tumour (mean logit above ``hard_negative_logit``)."""
    return (np.asarray(y) == 0) & (np.asarray(z) > settings.hard_negative_logit)


def sample_weights(y: np.ndarray, z: np.ndarray, settings: HeadRefitSettings) -> np.ndarray:
    """1 per tile, ``hard_negative_weight`` for a hard negative."""
    w = np.ones(len(y), np.float64)
    w[hard_negatives(y, z, settings)] = settings.hard_negative_weight
    return w


def fit_head(features: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """A logistic regression on the raw pooled features: kernel (D,) and bias, ready for the Dense layer.

    The penalty acts on the raw kernel on purpose: fitted on standardised features, the kernel grows large on
    the features that barely vary, and the int8 copy's feature noise then changed 5.2% of validation decisions
    (0.35% with the raw penalty; EXPERIMENTS.md).
    """
    lr = LogisticRegression(C=c, max_iter=20000).fit(features, y, sample_weight=weights)
    return lr.coef_[0], float(lr.intercept_[0])


def check_head_reads_features(model, z: np.ndarray, features: np.ndarray) -> None:
    """The pooled features must be exactly what the ``logit`` layer reads, or a new kernel means nothing."""
    kernel, bias = model.get_layer(LOGIT).get_weights()
    again = features @ kernel[:, 0] + bias[0]
    if not np.allclose(again, z, atol=1e-3 * max(1.0, float(np.abs(z).max()))):
        raise HeadRefitError("the engine's pooled features are not the input of the model's 'logit' layer")


def refit_head(bundle: Path, data: str, out: Path, settings: HeadRefitSettings = HeadRefitSettings(), *,
               limit: int | None = None, val_limit: int | None = None,
               target_sensitivity: float = 0.95, command: str = "") -> dict:
    """Write a copy of ``bundle`` to ``out`` with its head refitted on ``data``'s training split and its
    calibration, threshold, exports and figures re-fitted on the validation split; returns the new card."""
    src, out = Path(bundle), Path(out)
    if src.resolve() == out.resolve():
        raise HeadRefitError("--out must be a new directory: the source bundle stays as it is")
    source = Predictor.load(src, warm_up=False)  # hash-checked, safe-mode loaded; Keras: the model of record
    card, model = source.card, source.model
    if LOGIT not in [layer.name for layer in model.layers]:
        raise HeadRefitError(f"{src}: the model has no '{LOGIT}' layer to refit")
    (train_src, train_arr), (val_src, val_arr) = labelled_splits(data, limit, val_limit, "the refit")
    x, y = train_arr[0], train_arr[1]
    z, features = pooled_views(source, x)
    check_head_reads_features(model, z, features)
    weights = sample_weights(y, z, settings)
    kernel, bias = fit_head(features, y, weights, settings.c)
    model.get_layer(LOGIT).set_weights([kernel[:, None].astype(np.float32), np.array([bias], np.float32)])
    hard = int(hard_negatives(y, z, settings).sum())
    log.info("head refitted on %d training tiles (%d hard negatives weighted %.3g)", len(y), hard,
             settings.hard_negative_weight)

    record = {"head_refit": {"command": command, "source": src.name, "source_sha256": card.get("sha256"),
                             "source_validation_auc_tta": card.get("validation", {}).get("tta", {}).get("auc"),
                             "settings": settings.to_dict(),
                             "fitted_on": f"{train_src.description}: {len(y)} tiles, pooled features averaged "
                                          f"over the 8 dihedral views",
                             "hard_negatives": hard}}
    return write_derived(model, card, src, out, val_src, val_arr, record, target_sensitivity,
                         int8_calibration=calibration_tiles(train_src))
