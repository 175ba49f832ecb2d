"""How well a quality gate separates what the model may answer from what it may not, on real tiles."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from model_training.evaluation.derived import blurred, pen_marked
from model_training.inference.gate import OK, REASONS


def _reasons(quality: np.ndarray) -> dict:
    return {r: int((quality == r).sum()) for r in (OK, *REASONS) if (quality == r).any()}


def gate_figures(pred, tiles: np.ndarray, labels: np.ndarray, other_organ: np.ndarray | None = None,
                 *, tta: bool = False) -> dict:
    """Figures of ``pred``'s gate on held-out labelled ``tiles``, the same tiles blurred and pen-marked, and
    ``other_organ`` tiles (tissue that is not lymph node) when given."""
    clean = pred.predict(tiles, tta=tta)
    ok = clean.assessed

    def auc(keep: np.ndarray) -> float | None:
        return float(roc_auc_score(labels[keep], clean.p[keep])) if len(set(labels[keep].tolist())) == 2 else None

    out = {"held_out": {"tiles": int(len(tiles)), "ok": float(ok.mean()), "reasons": _reasons(clean.quality),
                        "auc_all": auc(np.ones(len(ok), bool)), "auc_ok": auc(ok)}}
    sets = {"blur_2.5px": blurred(tiles), "pen": pen_marked(tiles, seed=1)}
    if other_organ is not None and len(other_organ):
        sets["other_organ"] = other_organ
    for name, x in sets.items():
        q = pred.predict(x, tta=tta).quality
        out[name] = {"tiles": int(len(x)), "flagged": float((q != OK).mean()), "reasons": _reasons(q)}
    return out
