"""Slide page figures: the overview (thumbnail, tissue outline, heat map) and a place at full resolution.

Both are plotly figures in level-0 pixel coordinates, so zoom, pan and hover report slide positions. Streamlit
reports clicks on scatter points only, so invisible markers make the maps clickable; their customdata says
what a click means (a place on the overview, a tile on the close-up).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.display.imaging import data_uri, thumbnail
from model_training.slides.outputs import COLOURSCALE, overlay

OVERVIEW_TRACE = "places"
PLACE_TRACE = "tiles"
MAX_CLICK_POINTS = 4000
DISPLAY_SIDE = 1400


def _image_axes(fig: go.Figure, w: float, h: float, height: int) -> None:
    fig.update_xaxes(range=[0, w], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[h, 0], showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                      clickmode="event+select", dragmode="pan")


def overview_figure(thumb: np.ndarray, scale: float, dims: tuple[int, int], frame: pd.DataFrame | None,
                    mask: np.ndarray, opacity: float, cell: float, show_mask: bool = True,
                    highlight: tuple[int, int, int] | None = None) -> go.Figure:
    """The slide thumbnail with the tissue outline and (once scored) the heat map; click anywhere on it."""
    w, h = dims
    img = overlay(thumb, scale, frame if frame is not None else _empty(), opacity, mask if show_mask else None,
                  cell)
    fig = go.Figure()
    # a lattice of invisible markers: a click anywhere on the slide lands near one
    step = max(cell, np.sqrt(w * h / MAX_CLICK_POINTS))
    gx, gy = np.meshgrid(np.arange(step / 2, w, step), np.arange(step / 2, h, step))
    fig.add_trace(go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", name=OVERVIEW_TRACE, showlegend=False,
                               marker=dict(size=8, opacity=0), hovertemplate="x %{x:.0f}, y %{y:.0f}"
                               "<br>click to open this place<extra></extra>"))
    if frame is not None and len(frame):
        # coloured scale bar for the heat map (an invisible heat-map trace carries the colour bar)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker=dict(colorscale=COLOURSCALE, cmin=0, cmax=1, color=[0],
                                             colorbar=dict(title="P(tumour)"), showscale=True)))
    fig.add_layout_image(dict(source=data_uri(thumbnail(img, DISPLAY_SIDE)), xref="x", yref="y", x=0, y=0,
                              sizex=w, sizey=h, sizing="stretch", layer="below", xanchor="left", yanchor="top"))
    if highlight is not None:
        x, y, size = highlight
        fig.add_shape(type="rect", x0=x, y0=y, x1=x + size, y1=y + size, line=dict(color="white", width=3))
    _image_axes(fig, w, h, 640)
    fig.update_layout(title="Tissue (green outline) and P(tumour) per tile — click a place to open it")
    return fig


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in ("x", "y", "width", "height", "p")})


def place_window(cx: float, cy: float, tile0: float, tiles: int = 5) -> tuple[int, int, int]:
    """(x0, y0, side) of a ``tiles``×``tiles``-tile window centred on (cx, cy), in level-0 pixels."""
    side = int(round(tiles * tile0))
    return int(max(0, cx - side / 2)), int(max(0, cy - side / 2)), side


def place_figure(region: np.ndarray, x0: int, y0: int, side: int, frame: pd.DataFrame,
                 threshold: float) -> tuple[go.Figure, pd.DataFrame]:
    """A close-up of the slide at (x0, y0) with every scored tile outlined: red when flagged, orange when it
    needs review; click a tile to open it. Returns the figure and the tiles in the window."""
    inside = frame[(frame.x + frame.width > x0) & (frame.x < x0 + side) &
                   (frame.y + frame.height > y0) & (frame.y < y0 + side)]
    fig = go.Figure()
    fig.add_layout_image(dict(source=data_uri(thumbnail(region, 1024)), xref="x", yref="y", x=x0, y=y0, sizex=side, sizey=side,
                              sizing="stretch", layer="below", xanchor="left", yanchor="top"))
    for row in inside.itertuples():
        colour = "red" if row.p >= threshold else ("orange" if row.needs_review else "rgba(255,255,255,0.6)")
        fig.add_shape(type="rect", x0=row.x, y0=row.y, x1=row.x + row.width, y1=row.y + row.height,
                      line=dict(color=colour, width=3 if row.p >= threshold else 1))
    fig.add_trace(go.Scatter(
        x=inside.x + inside.width / 2, y=inside.y + inside.height / 2, mode="markers", name=PLACE_TRACE,
        showlegend=False, customdata=inside.index.to_numpy(), text=[f"{p:.3f}" for p in inside.p],
        marker=dict(size=40, opacity=0, symbol="square"),
        hovertemplate="tile x %{x:.0f}, y %{y:.0f} (centre)<br>P(tumour) %{text}<br>click to open<extra></extra>"))
    _image_axes(fig, 1, 1, 560)
    fig.update_xaxes(range=[x0, x0 + side])
    fig.update_yaxes(range=[y0 + side, y0])
    fig.update_layout(title=f"x {x0}–{x0 + side}, y {y0}–{y0 + side} (level-0 pixels): red = flagged, "
                            "orange = needs review")
    return fig, inside
