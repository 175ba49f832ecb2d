"""Plotly figures shared by the evaluation reports and the app."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

from model_training.bundle.files import FIGURES_DIR, HISTORY_FILE
from model_training.evaluation.metrics import at_threshold

log = logging.getLogger(__name__)


def roc_figure(y: np.ndarray, p: np.ndarray, threshold: float | None = None, title: str = "ROC") -> go.Figure:
    """ROC curve with the operating point of ``threshold`` marked."""
    fpr, tpr, _ = roc_curve(y, p)
    fig = go.Figure(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"AUC {roc_auc_score(y, p):.3f}"))
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line=dict(dash="dash", color="gray"))
    if threshold is not None:
        m = at_threshold(y, p, threshold)
        fig.add_trace(go.Scatter(x=[1 - m["specificity"]], y=[m["sensitivity"]], mode="markers",
                                 marker=dict(size=12, color="red"), name=f"threshold {threshold:.3f}"))
    fig.update_layout(title=title, xaxis_title="1 − specificity", yaxis_title="sensitivity",
                      width=520, height=480, legend=dict(x=0.45, y=0.08))
    return fig


def confusion_figure(m: dict, title: str = "Confusion matrix") -> go.Figure:
    """Confusion matrix from ``metrics.at_threshold`` counts (rows: truth, columns: prediction)."""
    z = [[m["tn"], m["fp"]], [m["fn"], m["tp"]]]
    fig = px.imshow(z, text_auto=True, color_continuous_scale="Blues",
                    x=["pred normal", "pred tumour"], y=["true normal", "true tumour"])
    fig.update_layout(title=f"{title} @ {m['threshold']:.3f}", width=460, height=420, coloraxis_showscale=False)
    return fig


def reliability_figure(y: np.ndarray, p: np.ndarray, bins: int = 10, title: str = "Reliability") -> go.Figure:
    """Observed tumour fraction against predicted probability (the diagonal is perfect calibration)."""
    frac, mean_p = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    fig = go.Figure(go.Scatter(x=mean_p, y=frac, mode="lines+markers", name="model"))
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line=dict(dash="dash", color="gray"))
    fig.update_layout(title=title, xaxis_title="predicted P(tumour)", yaxis_title="observed tumour fraction",
                      width=520, height=480, xaxis_range=[0, 1], yaxis_range=[0, 1])
    return fig


def history_figure(history: pd.DataFrame, title: str = "Training curves") -> go.Figure:
    """Loss and AUC per epoch for train and validation (one dash style per member for an ensemble)."""
    ids = [c for c in ("epoch", "member") if c in history.columns]
    cols = [c for c in history.columns if c not in ids and ("loss" in c or "auc" in c)]
    long = history.melt(id_vars=ids, value_vars=cols, var_name="metric")
    long["split"] = np.where(long["metric"].str.startswith("val_"), "validation", "train")
    long["metric"] = long["metric"].str.replace("val_", "", regex=False)
    fig = px.line(long, x="epoch", y="value", color="split", facet_col="metric", markers=True,
                  line_dash="member" if "member" in ids else None)
    fig.update_yaxes(matches=None, showticklabels=True)
    names = {"loss": "Loss (binary cross-entropy)", "auc": "ROC-AUC"}
    fig.for_each_annotation(lambda a: a.update(text=names.get(a.text.split("=")[-1], a.text.split("=")[-1])))
    fig.update_yaxes(title_text="")
    fig.update_layout(title=title, width=900, height=400, legend_title_text="")
    return fig


NO_BROWSER = "no Chromium/Chrome browser found (install Debian's chromium)"
_png_off: str | None = None  # why PNG export failed in this process: later figures go straight to HTML only


def find_browser() -> str | None:
    """The Chromium/Chrome that kaleido drives for PNG export, searched as kaleido searches (BROWSER_PATH,
    PATH, /usr/bin/chromium and the like, a browser fetched by plotly_get_chrome), or None."""
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None
    path = Chromium.find_browser(skip_local=False)
    return str(path) if path and Path(path).is_file() else None


def save_figure(fig: go.Figure, stem: Path, png: bool = True) -> list[Path]:
    """Write ``stem``.html (always) and ``stem``.png (when a headless browser is available).

    A PNG that cannot be made is one warning for the whole run: the HTML is the report of record, and a
    missing or broken browser fails the same way for every figure.
    """
    global _png_off
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".html")]
    # "directory" writes plotly.min.js beside the report once, so reports open offline (hospital networks).
    fig.write_html(out[0], include_plotlyjs="directory")
    if not png or _png_off:
        return out
    reason = None if find_browser() else NO_BROWSER
    if reason is None:
        try:
            fig.write_image(stem.with_suffix(".png"), scale=1)
            out.append(stem.with_suffix(".png"))
        except Exception as exc:  # kaleido's messages span paragraphs; the first line says what went wrong
            text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            reason = (lines[0] if lines else type(exc).__name__)[:200]
    if reason:
        _png_off = reason
        log.warning("%s/%s written; PNG skipped for this and later figures: %s",
                    stem.parent.name, out[0].name, reason)
    return out


def write_figures(out: Path, y: np.ndarray, p: np.ndarray, threshold: float, png: bool = True) -> list[Path]:
    """ROC, confusion matrix, reliability diagram and (if present) training curves, as HTML + PNG."""
    fig_dir = Path(out) / FIGURES_DIR
    paths = save_figure(roc_figure(y, p, threshold), fig_dir / "roc", png)
    paths += save_figure(confusion_figure(at_threshold(y, p, threshold)), fig_dir / "confusion", png)
    paths += save_figure(reliability_figure(y, p), fig_dir / "reliability", png)
    hist = Path(out) / HISTORY_FILE
    if hist.exists():
        paths += save_figure(history_figure(pd.read_csv(hist)), fig_dir / "training_curves", png)
    return paths
