"""Region view: cut a larger H&E image into 96x96 tiles at a stride, score them, map the scores back."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import plotly.graph_objects as go

from app.display.imaging import data_uri, thumbnail
from model_training.slides.outputs import COLOURSCALE

TILE = 96
MAX_SIDE = 2048
STRIDES = (96, 48, 32)
CLICK_TRACE = "tiles"


class RegionError(ValueError):
    """An image that cannot be used for the region view; the message is for the user."""


def check_region(img: np.ndarray, name: str) -> None:
    h, w = img.shape[:2]
    if h < TILE or w < TILE:
        raise RegionError(f"{name}: is {w}x{h} pixels; a region must be at least {TILE}x{TILE}")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise RegionError(f"{name}: is {w}x{h} pixels; the region view takes at most {MAX_SIDE}x{MAX_SIDE} "
                          "(crop or downsample it first)")


def grid(shape: tuple[int, ...], stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (ys, xs) of the tile grid; the last row/column may leave a margin < stride."""
    h, w = shape[:2]
    return np.arange(0, h - TILE + 1, stride), np.arange(0, w - TILE + 1, stride)


def iter_tiles(img: np.ndarray, stride: int, batch: int = 256) -> Iterator[np.ndarray]:
    """Tiles in row-major order, ``batch`` at a time (bounded memory even at stride 32 on 2048x2048)."""
    ys, xs = grid(img.shape, stride)
    coords = [(y, x) for y in ys for x in xs]
    for start in range(0, len(coords), batch):
        yield np.stack([img[y:y + TILE, x:x + TILE] for y, x in coords[start:start + batch]])


@dataclass
class RegionScores:
    p: np.ndarray  # (rows, cols) calibrated P(tumour), single view
    ys: np.ndarray
    xs: np.ndarray
    stride: int
    threshold: float
    assessed: np.ndarray | None = None  # (rows, cols): the quality gate let the model answer (None: all)

    @property
    def ok(self) -> np.ndarray:
        return np.ones(self.p.shape, bool) if self.assessed is None else self.assessed

    @property
    def n(self) -> int:
        return int(self.p.size)

    def tile_at(self, img: np.ndarray, flat_index: int) -> tuple[np.ndarray, int, int]:
        r, c = divmod(int(flat_index), len(self.xs))
        y, x = int(self.ys[r]), int(self.xs[c])
        return img[y:y + TILE, x:x + TILE], y, x

    def top_k(self, k: int) -> np.ndarray:
        """Flat indices of the k highest-scoring assessed tiles, best first."""
        p = np.where(self.ok, self.p, -np.inf).reshape(-1)
        return np.argsort(-p, kind="stable")[:min(k, int(self.ok.sum()))]


def score_region(img: np.ndarray, stride: int, predict: Callable[[np.ndarray], np.ndarray], threshold: float,
                 progress: Callable[[float], None] | None = None, batch: int = 256) -> RegionScores:
    """``predict`` maps a uint8 batch to P(tumour), or to the Predictor's ``Prediction`` (whose quality gate
    then says which tiles the model may answer); the result is laid out on the tile grid."""
    if stride not in STRIDES:
        raise RegionError(f"stride must be one of {STRIDES}")
    ys, xs = grid(img.shape, stride)
    total, done, out, ok = len(ys) * len(xs), 0, [], []
    for tiles in iter_tiles(img, stride, batch):
        r = predict(tiles)
        out.append(np.asarray(getattr(r, "p", r), np.float32))
        ok.append(np.asarray(getattr(r, "assessed", np.ones(len(tiles), bool)), bool))
        done += len(tiles)
        if progress is not None:
            progress(done / total)
    shape = (len(ys), len(xs))
    return RegionScores(np.concatenate(out).reshape(shape), ys, xs, stride, threshold,
                        np.concatenate(ok).reshape(shape))


def heatmap_figure(img: np.ndarray, scores: RegionScores, opacity: float = 0.45,
                   highlight: tuple[int, int] | None = None, max_side: int = 1024) -> go.Figure:
    """The image with a P(tumour) heat map on top; each cell sits on its tile's centre (the label region)."""
    h, w = img.shape[:2]
    half = TILE / 2
    fig = go.Figure(go.Heatmap(
        z=np.where(scores.ok, scores.p, np.nan), x=scores.xs + half, y=scores.ys + half, zmin=0, zmax=1,
        colorscale=COLOURSCALE,
        opacity=opacity, colorbar=dict(title="P(tumour)"), hoverinfo="skip"))
    # Streamlit reports clicks on scatter points but not on heat-map cells: an invisible marker on every
    # cell centre makes the map clickable; customdata carries the tile's flat index.
    cy, cx = np.meshgrid(scores.ys + half, scores.xs + half, indexing="ij")
    fig.add_trace(go.Scatter(
        x=cx.reshape(-1), y=cy.reshape(-1), mode="markers", name=CLICK_TRACE, showlegend=False,
        customdata=np.arange(scores.n),
        text=[f"{v:.3f}" + ("" if ok else " (not assessed)") for v, ok in zip(scores.p.reshape(-1),
                                                                            scores.ok.reshape(-1))],
        marker=dict(size=max(6, min(40, int(scores.stride * 640 / max(h, w)))), opacity=0, symbol="square"),
        hovertemplate="tile x %{x:.0f}, y %{y:.0f} (centre)<br>P(tumour) %{text}<br>click to open<extra></extra>"))
    fig.add_layout_image(dict(source=data_uri(thumbnail(img, max_side)), xref="x", yref="y", x=0, y=0,
                              sizex=w, sizey=h, sizing="stretch", layer="below", xanchor="left",
                              yanchor="top"))
    if highlight is not None:
        y, x = highlight
        fig.add_shape(type="rect", x0=x, y0=y, x1=x + TILE, y1=y + TILE, line=dict(color="white", width=3))
    fig.update_xaxes(range=[0, w], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[h, 0], showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(height=640, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white", clickmode="event+select",
                      title=f"P(tumour) per tile, stride {scores.stride} px ({scores.n} tiles)")
    return fig


def _points(event) -> list[dict]:
    """The selected points of an ``st.plotly_chart`` selection event (a dict or its attribute form)."""
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    return (selection or {}).get("points") or []


def clicked_tile(event) -> int | None:
    """The flat tile index (the point's customdata) of a click on a map, from st.plotly_chart's selection event."""
    for point in _points(event):
        data = point.get("customdata")
        if data is not None:
            return int(data[0] if isinstance(data, (list, tuple)) else data)
    return None

