"""Have the browser load the code of the results and detail views before the first upload.

Streamlit's frontend fetches and runs the code of each kind of element the first time one is drawn. For the
first scored tile that meant the results table, select box, metrics, slider, images and form all at once:
about 0.6 s on a 2-core machine, more than the scoring itself. The page asks the browser to import those
modules while the server is still loading the model. Their file names carry a build hash, so they are
looked up in the installed Streamlit's own static folder; a name that is not there is skipped.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import streamlit as st

# Elements of the Analyze results and the tile detail view, by the name of their frontend module.
MODULES = ("axios", "Progress", "ProgressBar", "Quiver", "DataFrame", "FileDownload.esm", "Selectbox", "Metric",
           "Slider", "ImageList", "Radio", "TextArea")
STATIC_JS = Path(st.__file__).resolve().parent / "static" / "static" / "js"
# Resolved against the URL of Streamlit's own entry module, so the browser shares one copy with the app; the
# element hides its own container, which would otherwise add a gap under the banner.
SCRIPT = """<style>[data-testid="stElementContainer"]:has(#pathreview-preload) {{ display: none; }}</style>
<span id="pathreview-preload"></span><script>(() => {{
  const entry = document.querySelector('script[src*="/js/index."]');
  if (!entry) return;
  for (const name of {names}) import(new URL(name, entry.src).href).catch(() => {{}});
}})();</script>"""


@functools.cache
def module_files() -> tuple[str, ...]:
    """The installed frontend's file names for ``MODULES`` (empty when the layout is not the expected one)."""
    if not STATIC_JS.is_dir():
        return ()
    return tuple(sorted(p.name for module in MODULES for p in STATIC_JS.glob(f"{module}.*.js")))


def preload() -> None:
    """Emit the (invisible) import of the results and detail views' frontend modules."""
    names = module_files()
    if names:
        st.html(SCRIPT.format(names=json.dumps(names)), unsafe_allow_javascript=True)
