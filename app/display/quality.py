"""How pages speak of the quality gate: "not assessed" and why, in a pathologist's words."""
from __future__ import annotations

import math

from model_training.inference.gate import NOT_ASSESSED, OK

QUALITY_WORDS = {
    "background": "mostly glass, no tissue to assess",
    "fold": "folded tissue",
    "pen": "marker-pen ink over the tissue",
    "blur": "out of focus",
    "out-of-distribution": "unlike the lymph-node tissue the model learned from",
}


def call(p: float, threshold: float, quality: str | None = OK) -> str:
    """The model's call on one tile: "tumour", "normal" or "not assessed"."""
    if quality not in (None, OK):
        return NOT_ASSESSED
    return "tumour" if p >= threshold else "normal"


def call_with_reason(decision: str, quality: str | None) -> str:
    """A stored call as a list shows it: "not assessed (out of focus)" for a tile the gate stopped."""
    if quality in (None, OK) or (isinstance(quality, float) and math.isnan(quality)):
        return decision
    return f"{NOT_ASSESSED} ({QUALITY_WORDS.get(quality, quality)})"


def ood_help(ood: float) -> str:
    """The tooltip beside a tile's quality verdict."""
    if not math.isfinite(ood):
        return "This model bundle has no quality gate: every tile is answered."
    return (f"Distance from the training tiles: {ood:.2f} (above 1.00 the tile is out of distribution). "
            "Blur, pen, folds and glass are checked first.")
