"""The slide-level answer: from a slide's scored tiles to ``slide_score`` (P that the slide holds a metastasis),
a ``decision`` at the card's slide-level operating point, and which tiles to flag on it.

The tile threshold is chosen for tile sensitivity, so on a normal slide of a few hundred tiles it raises tens
of alarms. A slide is instead summarised by the mean logit of its ``k`` highest-scoring tiles, Platt-calibrated
on labelled case slides (``slide_level`` in the model card). A tile is flagged when its own logit reaches the
logit that puts a slide at its decision threshold, so a slide called negative (k = 1) shows no flag and one
called positive shows at least its top tile. Tiles whose ``quality`` is not ``ok`` are not assessed: they
count neither toward the score nor as flagged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

POSITIVE, NEGATIVE = "metastasis", "no_metastasis"
EPS = 1e-6


@dataclass(frozen=True)
class SlideLevel:
    """The card's slide-level parameters: aggregate of the top ``k`` tile logits, Platt ``temperature`` and
    ``bias`` on it, the decision ``threshold`` on ``slide_score``."""

    k: int = 1
    temperature: float = 1.0
    bias: float = 0.0
    threshold: float = 0.5

    @classmethod
    def from_card(cls, card: dict) -> "SlideLevel | None":
        """The parameters recorded in a card, or None for a card without a slide-level block."""
        block = card.get("slide_level")
        if not block:
            return None
        p = block["parameters"]
        return cls(int(p["k"]), float(p["temperature"]), float(p["bias"]), float(block["threshold"]))

    def as_dict(self) -> dict:
        return asdict(self)

    def tile_flag_logit(self) -> float:
        """The tile logit whose top-k aggregate puts a slide exactly at ``threshold``."""
        t = np.clip(self.threshold, EPS, 1 - EPS)
        return float((np.log(t / (1 - t)) - self.bias) * self.temperature)


@dataclass
class SlideAnswer:
    """A slide's answer: score, decision, and per-row masks of the tiles assessed and flagged."""

    slide_score: float | None
    decision: str | None
    assessed: np.ndarray
    flagged: np.ndarray

    @property
    def tiles_assessed(self) -> int:
        return int(self.assessed.sum())

    @property
    def tiles_flagged(self) -> int:
        return int(self.flagged.sum())


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def assessed_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows that count: all of them, or those whose ``quality`` is ``ok`` when the frame has that column."""
    if "quality" in frame.columns:
        return (frame["quality"].astype(str) == "ok").to_numpy()
    return np.ones(len(frame), bool)


def top_k_logit(p: np.ndarray, k: int) -> float:
    """Mean logit of the ``k`` highest tile scores (all of them when fewer)."""
    z = np.sort(logit(p))[::-1]
    return float(z[:max(1, k)].mean())


def slide_score(p: np.ndarray, level: SlideLevel) -> float:
    """P(the slide holds a metastasis) from its assessed tiles' calibrated P(tumour)."""
    return float(1.0 / (1.0 + np.exp(-(top_k_logit(p, level.k) / level.temperature + level.bias))))


def answer(frame: pd.DataFrame, level: SlideLevel) -> SlideAnswer:
    """The slide-level answer for a tiles frame (column ``p``; ``quality`` optional)."""
    ok = assessed_rows(frame)
    p = frame["p"].to_numpy(float)
    if not ok.any():
        return SlideAnswer(None, None, ok, np.zeros(len(frame), bool))
    score = slide_score(p[ok], level)
    flagged = ok & (logit(p) >= level.tile_flag_logit())
    return SlideAnswer(score, POSITIVE if score >= level.threshold else NEGATIVE, ok, flagged)
