"""The Slide page's deep-zoom viewer: OpenSeadragon in a Streamlit component, fed by ``deepzoom_routes``.

Layers: the slide's Deep Zoom tiles, the heat map (opacity slider), the tissue outline and boxes around the
tiles to look at: the flagged ones (red) and those worth a look (orange); a navigator and a scale bar in µm.
Scroll zooms, drag pans. The viewer reports a click as a level-0 point and a step through the tiles to look at
(keys n / p) as the box's index, so the page opens that tile's detail; the page's own choice (its list) centres
the viewer on it.
OpenSeadragon is vendored (``viewer/vendor/openseadragon``, BSD-3-Clause) and served by the app itself.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.inputs.deepzoom_routes import PREFIX

_HTML = """<div class="pr-viewer" tabindex="0" aria-label="Slide viewer: scroll to zoom, drag to pan, n / p for the
next / previous tile to look at">
  <div class="pr-bar">
    <label>Heat map <input class="pr-opacity" type="range" min="0" max="1" step="0.05" value="0.5"
      aria-label="Heat-map opacity"></label>
    <label><input class="pr-tissue" type="checkbox" checked> Tissue outline</label>
    <label><input class="pr-boxes" type="checkbox" checked> Tile boxes</label>
    <button type="button" class="pr-prev" title="Previous tile to look at (p)">◀ Previous</button>
    <button type="button" class="pr-next" title="Next tile to look at (n)">Next ▶</button>
    <span class="pr-status" aria-live="polite"></span>
  </div>
  <div class="pr-osd"></div>
  <div class="pr-scale"></div>
</div>"""
_CSS = """
.pr-viewer { position: relative; font-family: var(--st-font); color: var(--st-text-color); outline: none; }
.pr-viewer:focus-within .pr-osd { outline: 2px solid var(--st-primary-color); }
.pr-bar { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: 0.25rem 0; font-size: 0.9rem; }
.pr-bar button { font: inherit; padding: 0.1rem 0.6rem; border-radius: 0.4rem; cursor: pointer;
  color: var(--st-text-color); background: var(--st-background-color); border: 1px solid var(--st-border-color); }
.pr-status { opacity: 0.75; }
.pr-osd { width: 100%; height: 640px; background: #f3f3f3; border-radius: 0.4rem; }
.pr-scale { position: absolute; left: 12px; bottom: 12px; height: 1.3rem; border: 2px solid #111;
  border-top: none; color: #111; background: rgba(255,255,255,0.75); font-size: 0.75rem; text-align: center;
  pointer-events: none; }
.pr-box { pointer-events: none; box-sizing: border-box; }
.pr-f { border: 2px solid #e00000; }
.pr-r { border: 2px dashed #ff9800; }
.pr-sel { border: 3px solid #1e88e5; box-shadow: 0 0 0 2px #fff; }
"""


@st.cache_resource(show_spinner=False)
def _component():
    js = Path(__file__).with_name("slide_viewer.js").read_text(encoding="utf-8")
    return st.components.v2.component("pathreview_slide_viewer", html=_HTML, css=_CSS, js=js, isolate_styles=False)


def overlay_url(sid: str, name: str) -> str:
    """Where the viewer fetches the overlay ``name`` of the slide ``sid``."""
    return f"{PREFIX}/{sid}/overlay/{name}.png"


def slide_viewer(key: str, sid: str, size: dict, mpp: float, *, heat: str | None = None,
                 tissue: str | None = None, boxes: list[list] | None = None, selected: int = -1):
    """Mount the viewer for the slide ``sid`` (``size``: ``deepzoom.info``); returns the component's result,
    whose ``clicked`` is ``{"x", "y"}`` (level-0) after a click and ``step`` is ``{"index"}`` after n / p."""
    data = {"base": f"{PREFIX}/{sid}", "width": size["width"], "height": size["height"],
            "tileSize": size["tileSize"], "overlap": size["overlap"], "mpp": mpp,
            "heat": overlay_url(sid, heat) if heat else None,
            "tissue": overlay_url(sid, tissue) if tissue else None, "boxes": boxes or [], "selected": selected}
    return _component()(key=key, data=data, on_clicked_change=lambda: None, on_step_change=lambda: None)
