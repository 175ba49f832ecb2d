"""The look head: a second logistic regression on the pooled features, for a slide's highest tiles only.

The tile head is fitted with a strong penalty, because its int8 copy must call validation tiles as the float
model does, and a large kernel amplifies the int8 features' noise. A slide-level answer rests on a few tiles,
each scored with 8-view TTA, whose mean features carry far less of that noise; there a nearly unpenalised head
separates the normal tiles the network scores highest from tumour better (EXPERIMENTS.md, "Sixth round").
The card's ``look_head`` entry holds its kernel, bias and calibration (``training/look_head.py`` fits it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from model_training.bundle.files import BundleError

CARD_KEY = "look_head"
REFIT = "fit it again with python -m model_training.cli.fit_look_head BUNDLE --data PCAM_ROOT"


@dataclass(frozen=True)
class LookHead:
    """Kernel (D,) and bias of the head, and the Platt calibration and threshold of its TTA logits."""

    kernel: np.ndarray
    bias: float
    temperature: float
    calibration_bias: float
    threshold: float

    @classmethod
    def from_card(cls, card: dict) -> "LookHead | None":
        """The card's look head, or None for a bundle without one."""
        entry = card.get(CARD_KEY)
        if not entry:
            return None
        try:
            cal = entry["calibration"]
            head = cls(np.asarray(entry["kernel"], np.float32).reshape(-1), float(entry["bias"]),
                       float(cal["temperature"]), float(cal["bias"]), float(cal["threshold"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"the model card's {CARD_KEY} entry is incomplete ({type(exc).__name__}: {exc}); "
                              f"{REFIT}") from None
        if not (len(head.kernel) and np.isfinite(head.kernel).all() and head.temperature > 0):
            raise BundleError(f"the model card's {CARD_KEY} entry has no usable kernel or calibration; {REFIT}")
        return head

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw logits of pooled features (..., D) → (...)."""
        features = np.asarray(features, np.float32)
        if features.shape[-1] != len(self.kernel):
            raise BundleError(f"the model card's {CARD_KEY} has {len(self.kernel)} weights but the network gives "
                              f"{features.shape[-1]} pooled features; {REFIT}")
        return features @ self.kernel + np.float32(self.bias)

    def fingerprint(self) -> str:
        """A short digest of the head, so a run scored with another head is told apart."""
        return hashlib.sha256(self.kernel.tobytes() + np.float32(self.bias).tobytes()).hexdigest()[:16]
