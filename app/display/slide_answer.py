"""What the slide-level answer is worth, in a pathologist's words, from the figures the model card holds."""
from __future__ import annotations

import math


def _ci(ci: list | None) -> str:
    return f" (95% CI {ci[0]:.0%}–{ci[1]:.0%})" if ci and len(ci) == 2 else ""


def operating_point_caption(card: dict) -> str | None:
    """One sentence on the held-out case slides behind the card's slide-level operating point, or None when the
    card has no measured slide-level block."""
    block = card.get("slide_level") or {}
    test = block.get("test_set") or {}
    if not {"slides", "positive_slides", "sensitivity", "specificity"} <= set(test):
        return None
    pos = int(test["positive_slides"])
    neg = int(test["slides"]) - pos
    auc = f", slide AUC {test['auc']:.3f}" if isinstance(test.get("auc"), (int, float)) else ""
    how = f" ({test['folds']}-fold cross-validation: each slide answered by a fit that had not seen it)" \
        if test.get("folds") else ""
    return (f"On {test['slides']} held-out labelled case slides{how}, this operating point called "
            f"{test['sensitivity']:.0%} of the {pos} with a metastasis{_ci(test.get('sensitivity_ci95'))} and cleared "
            f"{test['specificity']:.0%} of the {neg} without{_ci(test.get('specificity_ci95'))}{auc}. "
            "The slide score orders the worklist; it does not sign a case out.")


def size_caption(card: dict, tiles_assessed: int, shift: float) -> str | None:
    """One sentence for a slide larger than the case slides behind the operating point (None otherwise): how
    its tiles were read, and what the card measured on held-out slides made larger."""
    block = card.get("slide_level") or {}
    ref = int((block.get("parameters") or {}).get("reference_tiles") or 0)
    rows = block.get("size_check") or []
    if ref <= 0 or shift <= 0 or tiles_assessed <= ref:
        return None
    ratio = tiles_assessed / ref
    times = f"{ratio:.1f}".removesuffix(".0") if ratio < 10 else f"{ratio:.0f}"  # 1.2×, not 1×
    text = (f"This slide has {tiles_assessed:,} assessed tiles, {times}× the {ref} of the case slides the answer "
            f"was fitted on, so its tiles are read {shift:.1f} logits lower (the size rule: a larger slide's highest "
            "normal tiles score higher by chance).")
    if rows:
        row = min(rows, key=lambda r: abs(math.log(r["factor"] / ratio)))
        rule = row["with_size_rule"]
        neg, pos = int(row["normal_slides"]), int(row["metastasis_slides"])
        text += (f" On held-out case slides laid side by side to {row['factor']}× ({row['assessed_tiles_median']:.0f} "
                 f"tiles), {round((1 - rule['normal_called_positive']) * neg)} of {neg} normal slides were cleared "
                 f"and {round(rule['metastases_called'] * pos)} of {pos} with a 1–8-tile metastasis were called.")
        if ratio > 1.5 * row["factor"]:
            text += " This slide is larger than any measured: treat its answer as an ordering, not a call."
    return text
