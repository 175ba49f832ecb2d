"""The quality gate: whether a tile may be answered at all, and how far it lies from the training tiles.

Every scored tile gets a ``quality`` verdict, ``ok`` or the first reason found among ``background`` (glass),
``fold`` (tissue folded over itself), ``pen`` (marker ink), ``blur`` (out of focus) and ``out-of-distribution``,
and an ``ood`` score: the larger of two Mahalanobis distances, each divided by its limit, so that 1.0 is the
gate's operating point and higher is further from the training tiles:

* the model's own pooled features (the ``logit`` layer's input, log-scaled), against one Gaussian fitted on
  training tiles (Ledoit-Wolf shrinkage: the features outnumber what a plain covariance estimates well);
* the tile's stain statistics (``quality.measure``'s optical-density percentiles and spread), against the same kind of
  Gaussian: the model's features barely move on tissue it never saw (skin reads like tumour to it), its
  stain and texture statistics do.

A tile whose verdict is not ``ok`` is "not assessed": the Predictor gives it no tumour or normal decision.
The fitted parameters live in the bundle (``quality_gate.npz``), listed in the card with their sha256.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from model_training.bundle.files import verified_gate
from model_training.inference.quality import Measures, measure

OK = "ok"
NOT_ASSESSED = "not assessed"
# In the order they are checked: a tile of glass is called background even though it is also "blurred".
BACKGROUND = "background"
REASONS = (BACKGROUND, "fold", "pen", "blur", "out-of-distribution")
GLASS_MAX = 0.95  # a tile at least this much glass is background (fat and pale stroma stay below)
# A slide whose tiles are this often out of distribution, or whose typical stain lies beyond the gate's
# limit, is unlike the slides the model learned from as a whole.
SLIDE_OOD_SHARE = 0.25
LIMITS = ("sharpness_min", "ink_max", "dark_max", "features_max", "colour_max")


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools (found once: the search walks the loaded libraries)."""
    return ThreadpoolController()


@dataclass
class Gaussian:
    """A Gaussian density: its mean and precision (inverse covariance)."""

    mean: np.ndarray
    precision: np.ndarray

    def __post_init__(self) -> None:
        # the distances run in float32: cast once here, not on every batch (the stored arrays stay as fitted)
        self._mean32 = np.asarray(self.mean, np.float32)
        self._precision32 = np.asarray(self.precision, np.float32)

    @classmethod
    def fit(cls, x: np.ndarray) -> "Gaussian":
        # scikit-learn is imported only when a gate is fitted: scoring needs numpy alone
        from sklearn.covariance import LedoitWolf

        x = np.asarray(x, np.float64)
        return cls(x.mean(0), np.linalg.inv(LedoitWolf().fit(x).covariance_))

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``x``."""
        d = np.asarray(x, np.float32) - self._mean32
        # One BLAS thread: OpenBLAS's idle threads spin after a product and take the cores from ONNX Runtime's
        # next batch (measured: the gate's cost on scoring fell from +30% to +13% with this limit).
        with _blas().limit(limits=1, user_api="blas"):
            squared = ((d @ self._precision32) * d).sum(1)  # one product: 10x einsum's speed
        return np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)


def feature_space(features: np.ndarray) -> np.ndarray:
    """The pooled features as the gate models them: log-scaled (they are ReLU outputs with long tails)."""
    return np.log1p(np.maximum(np.asarray(features, np.float32), 0.0))


@dataclass
class Verdict:
    """The gate's answer for N tiles."""

    quality: np.ndarray  # (N,) object: "ok" or the reason
    ood: np.ndarray  # (N,) float32; above 1.0 is out of distribution
    stain: np.ndarray  # (N,) float32: the stain statistics' part of ``ood`` alone


@dataclass
class Gate:
    """Fitted densities and limits; ``assess`` gives the verdicts."""

    features: Gaussian
    colour: Gaussian
    limits: dict

    def ood(self, m: Measures, features: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``ood`` score (1.0 at the limit, higher further out; the stain statistics alone without
        features) and its stain part."""
        stain = (self.colour.distance(m.colour) / self.limits["colour_max"]).astype(np.float32)
        if features is None:
            return stain, stain
        far = self.features.distance(feature_space(features)) / self.limits["features_max"]
        return np.maximum(stain, far).astype(np.float32), stain

    def assess(self, tiles: np.ndarray, features: np.ndarray | None) -> Verdict:
        """Verdicts for uint8 tiles (N, 96, 96, 3) and the model's pooled features for them (or None)."""
        return self.judge(measure(tiles), features)

    def judge(self, m: Measures, features: np.ndarray | None) -> Verdict:
        """Verdicts from the tiles' quality measures (``quality.measure``) and the model's pooled features."""
        ood, stain = self.ood(m, features)
        lim = self.limits
        checks = (m.glass >= GLASS_MAX, m.dark > lim["dark_max"], m.ink > lim["ink_max"],
                  m.sharpness < lim["sharpness_min"], ood > 1.0)
        quality = np.full(len(m.glass), OK, dtype=object)
        for reason, hit in zip(reversed(REASONS), reversed(checks)):  # the first reason in REASONS wins
            quality[hit] = reason
        return Verdict(quality, ood, stain)

    def save(self, path: Path) -> None:
        """Write the gate as one .npz (arrays only: nothing is unpickled when it is read)."""
        buf = io.BytesIO()
        np.savez(buf, features_mean=self.features.mean, features_precision=self.features.precision,
                 colour_mean=self.colour.mean, colour_precision=self.colour.precision,
                 limits=np.array([self.limits[k] for k in LIMITS], np.float64))
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def read(cls, path: Path) -> "Gate":
        with np.load(path, allow_pickle=False) as z:
            return cls(Gaussian(z["features_mean"], z["features_precision"]),
                       Gaussian(z["colour_mean"], z["colour_precision"]),
                       dict(zip(LIMITS, map(float, z["limits"]))))


def fit_gate(train_tiles: np.ndarray, train_features: np.ndarray, held_tiles: np.ndarray,
             held_features: np.ndarray, *, colour_quantile: float = 0.97, features_quantile: float = 0.995,
             blur_quantile: float = 0.005,
             ink_quantile: float = 0.995, dark_quantile: float = 0.998) -> Gate:
    """Fit the densities on training tiles and set each limit at a quantile of held-out tiles of the same
    kind (validation tiles: slides the densities never saw): about ``1 - colour_quantile`` of them fall
    outside the stain density, ``1 - features_quantile`` outside the feature density, and a few in a
    thousand fail each of the other checks. The stain density gets the larger share: it is the one that
    tells other tissue apart, where the features mostly repeat what the blur and pen checks find."""
    dens_f = Gaussian.fit(feature_space(train_features))
    m_train = measure(train_tiles)
    dens_c = Gaussian.fit(m_train.colour)
    m = measure(held_tiles)
    tissue = m.glass < GLASS_MAX
    limits = {
        "sharpness_min": float(np.quantile(m.sharpness[tissue], blur_quantile)),
        "ink_max": max(0.01, float(np.quantile(m.ink, ink_quantile))),
        "dark_max": max(0.2, float(np.quantile(m.dark, dark_quantile))),
        "features_max": float(np.quantile(dens_f.distance(feature_space(held_features)), features_quantile)),
        "colour_max": float(np.quantile(dens_c.distance(m.colour), colour_quantile)),
    }
    return Gate(dens_f, dens_c, limits)


def load_gate(bundle: Path, card: dict) -> Gate | None:
    """The bundle's gate, checked against its card; None for a bundle fitted without one."""
    path = verified_gate(bundle, card)
    return None if path is None else Gate.read(path)
