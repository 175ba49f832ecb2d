"""Slide-level agreement: each pathologist's sign-outs against the model's slide decision (Cohen's kappa) and
against the truth where it is known (sensitivity, specificity with Wilson 95% CIs), and the model's own
figures on the same cases. A deferred case is no call and is left out (and counted)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from app.review.agreement import cohen, wilson

MODEL = "model (slide decision)"


def _calls(values: pd.Series) -> np.ndarray:
    return np.where(values == "metastasis", 1.0, np.where(values == "no_metastasis", 0.0, np.nan))


def table(signouts: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """One row per reader, and one for the model on the cases with a known truth: cases, deferred, kappa
    with the model [95% CI], sensitivity and specificity against the truth [Wilson 95% CIs]."""
    rows = []
    readers = [(r, g.assign(call_v=_calls(g.call), model_v=_calls(g.model_decision)))
               for r, g in signouts.groupby("reviewer", sort=True)] if not signouts.empty else []
    model_rows = cases.assign(call_v=_calls(cases.decision), model_v=_calls(cases.decision))
    for name, g in readers + [(MODEL, model_rows)]:
        called = g[g.call_v.notna()]
        both = called[called.model_v.notna()]  # kappa only where the model gave an answer too
        kappa = cohen(both.call_v.to_numpy(int), both.model_v.to_numpy(int)) if name != MODEL and len(both) else \
            (np.nan, np.nan, np.nan)
        truth = called[called.truth.notna()]
        pos, neg = truth[truth.truth == 1], truth[truth.truth == 0]
        tp, tn = int((pos.call_v == 1).sum()), int((neg.call_v == 0).sum())
        rows.append({"reader": name, "cases": len(g), "deferred": int(g.call_v.isna().sum()),
                     "kappa": kappa[0], "ci_low": kappa[1], "ci_high": kappa[2], "with_truth": len(truth),
                     "sensitivity": tp / len(pos) if len(pos) else np.nan,
                     "sens_low": wilson(tp, len(pos))[0] if len(pos) else np.nan,
                     "sens_high": wilson(tp, len(pos))[1] if len(pos) else np.nan,
                     "specificity": tn / len(neg) if len(neg) else np.nan,
                     "spec_low": wilson(tn, len(neg))[0] if len(neg) else np.nan,
                     "spec_high": wilson(tn, len(neg))[1] if len(neg) else np.nan})
    return pd.DataFrame(rows)
