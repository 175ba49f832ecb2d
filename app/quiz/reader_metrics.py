"""Readers against the truth: a student's sensitivity and specificity, the class per tile and per student, and
the model's ROC curve on the quiz tiles with every reader as a point on it."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import roc_auc_score, roc_curve

from app.display.text import plain_html


def reader_point(labels, answers) -> dict:
    """Counts, sensitivity, specificity and accuracy of yes/no readings (1 = tumour) against labels."""
    y, a = np.asarray(labels, int), np.asarray(answers, int)
    tp, fn = int(((y == 1) & (a == 1)).sum()), int(((y == 1) & (a == 0)).sum())
    tn, fp = int(((y == 0) & (a == 0)).sum()), int(((y == 0) & (a == 1)).sum())
    n = len(y)
    return {"n": n, "correct": tp + tn, "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "sensitivity": tp / (tp + fn) if tp + fn else math.nan,
            "specificity": tn / (tn + fp) if tn + fp else math.nan,
            "accuracy": (tp + tn) / n if n else math.nan}


def per_student(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per student who joined (in join order): answered, correct, sensitivity, specificity."""
    rows = []
    for name in names:
        mine = frame[frame["student"] == name]
        m = reader_point(mine["label"], mine["answer"])
        rows.append({"student": name, "answered": m["n"], "correct": m["correct"],
                     "sensitivity": m["sensitivity"], "specificity": m["specificity"],
                     "mean confidence": float(mine["confidence"].mean()) if len(mine) else math.nan})
    return pd.DataFrame(rows, columns=["student", "answered", "correct", "sensitivity", "specificity",
                                       "mean confidence"])


def per_tile(key: pd.DataFrame, frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per quiz tile: truth, model P and decision, how many answered, called tumour, were right."""
    right = frame.assign(right=(frame["answer"] == frame["label"]).astype(int))
    g = right.groupby("position")
    out = key.assign(
        answered=key["position"].map(g.size()).fillna(0).astype(int),
        said_tumour=key["position"].map(g["answer"].sum()).fillna(0).astype(int),
        right=key["position"].map(g["right"].sum()).fillna(0).astype(int))
    out["pct_right"] = np.where(out["answered"] > 0, 100.0 * out["right"] / out["answered"].clip(lower=1), np.nan)
    out["model"] = np.where(out["p"] >= threshold, "tumour", "no tumour")
    out["truth"] = np.where(out["label"] == 1, "tumour", "no tumour")
    return out


def hardest(tiles: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The answered tiles the class got wrong most often (lowest % right, most answers first on ties)."""
    done = tiles[tiles["answered"] > 0]
    return done.sort_values(["pct_right", "answered", "position"], ascending=[True, False, True]).head(n)


def roc_with_readers(y, p, threshold: float, readers: pd.DataFrame | None = None,
                     title: str = "Model ROC on the quiz tiles, readers as points",
                     readers_name: str = "readers") -> go.Figure:
    """The model's ROC curve on the quiz tiles, its operating point, and readers (student, sensitivity,
    specificity) as points; needs both classes among the tiles."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    fpr, tpr, _ = roc_curve(y, p)
    fig = go.Figure(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"model (AUC {roc_auc_score(y, p):.2f})"))
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line=dict(dash="dash", color="gray"))
    m = reader_point(y, (p >= threshold).astype(int))
    fig.add_trace(go.Scatter(x=[1 - m["specificity"]], y=[m["sensitivity"]], mode="markers",
                             marker=dict(size=14, color="red", symbol="diamond"),
                             name=f"model at its threshold {threshold:.3f}"))
    if readers is not None and len(readers):
        ok = readers.dropna(subset=["sensitivity", "specificity"])
        fig.add_trace(go.Scatter(x=1 - ok["specificity"], y=ok["sensitivity"], mode="markers+text",
                                 text=ok["student"].map(plain_html), textposition="top center", cliponaxis=False,
                                 marker=dict(size=11, color="darkorange"), name=readers_name))
    fig.update_layout(title=title, xaxis_title="1 − specificity", yaxis_title="sensitivity", height=460,
                      xaxis=dict(range=[-0.03, 1.03]), yaxis=dict(range=[-0.03, 1.08]),
                      legend=dict(x=0.45, y=0.08))
    return fig
