"""Readers as points on the model's ROC, each with its 95% CIs: the Agreement page's figure, for tiles and for
slides."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import roc_auc_score, roc_curve

from app.display.text import plain_html

TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1]


def readers_on_roc(truth: np.ndarray, scores: np.ndarray, readers: pd.DataFrame, title: str,
                   model_point: tuple[str, float, float] | None = None) -> go.Figure:
    """The model's ROC from ``scores`` against ``truth`` (1 / 0; drawn when both occur), the chance line, each
    reader of ``readers`` (``reader``, ``sensitivity``, ``specificity`` and their ``sens_low`` / ``sens_high``
    / ``spec_low`` / ``spec_high``) as a point with its intervals, and ``model_point`` (label, sensitivity,
    specificity: the model's own decisions) marked on the curve."""
    fig = go.Figure()
    y, p = np.asarray(truth, int), np.asarray(scores, float)
    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"model (AUC {roc_auc_score(y, p):.3f})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                             showlegend=False, hoverinfo="skip"))
    readers = readers[readers.sensitivity.notna() & readers.specificity.notna()]
    fig.add_trace(go.Scatter(x=1 - readers["specificity"], y=readers["sensitivity"], mode="markers+text",
                             text=readers["reader"].map(plain_html), textposition="top right",
                             marker={"size": 12, "symbol": "diamond"}, name="readers",
                             error_x={"type": "data", "symmetric": False,
                                      "array": readers["spec_high"] - readers["specificity"],
                                      "arrayminus": readers["specificity"] - readers["spec_low"]},
                             error_y={"type": "data", "symmetric": False,
                                      "array": readers["sens_high"] - readers["sensitivity"],
                                      "arrayminus": readers["sensitivity"] - readers["sens_low"]}))
    if model_point is not None and not any(map(np.isnan, model_point[1:])):
        label, sens, spec = model_point
        fig.add_trace(go.Scatter(x=[1 - spec], y=[sens], mode="markers", name=plain_html(label),
                                 marker={"size": 12, "symbol": "circle-open", "line": {"width": 3}}))
    return fig.update_layout(title=title, xaxis_title="1 − specificity", yaxis_title="sensitivity", height=460,
                             # room above 1 for the names of readers who found every positive
                             xaxis={"range": [-0.02, 1.02]}, yaxis={"range": [-0.02, 1.12], "tickvals": TICKS})
