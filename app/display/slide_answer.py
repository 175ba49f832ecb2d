"""What the slide-level answer is worth, in a pathologist's words, from the figures the model card holds."""
from __future__ import annotations


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
    return (f"On {test['slides']} held-out labelled case slides, this operating point called "
            f"{test['sensitivity']:.0%} of the {pos} with a metastasis{_ci(test.get('sensitivity_ci95'))} and cleared "
            f"{test['specificity']:.0%} of the {neg} without{_ci(test.get('specificity_ci95'))}{auc}. "
            "The slide score orders the worklist; it does not sign a case out.")
