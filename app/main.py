"""PathReview entry point: ``streamlit run app/main.py`` (from the repository root).

Every page view runs this file as a script (``__main__``), which draws the app. ``streamlit run`` also
imports it once when the server starts, because it defines ``server`` (an ``st.App`` serving this same
script): the model then starts loading in the background at once, rather than when the first browser
connects, and the first page is ready seconds sooner.
"""
from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import audit, frontend_preload, state  # noqa: E402  (all light: the model loader imports TensorFlow)


def sidebar(pred, error: str | None) -> None:
    with st.sidebar:
        st.markdown("### PathReview")
        if pred is not None:
            st.caption(f"Model **{pred.card.get('name', '?')}** · sha256 `{pred.sha256[:12]}…` · "
                       f"threshold {pred.threshold(True):.3f} (TTA)")
        else:
            st.caption("No model loaded.")
        st.text_input("Reviewer (optional)", key="reviewer", placeholder="name or initials",
                      help="Stored with each review you record in the audit log.")
        rows = state.decisions()
        st.caption(f"{len(rows)} review(s) recorded in this session.")
        st.download_button("Export my reviews (CSV)", audit.export_csv(rows), file_name="pathreview_reviews.csv",
                           mime="text/csv", disabled=not rows,
                           key="export-reviews", on_click="ignore")


def main() -> None:
    """One script run: the banner, the sidebar and the chosen page."""
    st.set_page_config(page_title="PathReview", layout="wide")  # default favicon: served locally, no CDN
    # No page icons: st.navigation turns a page icon into the favicon, fetched from a font CDN (offline sites).
    nav = st.navigation([
        st.Page("views/analyze.py", title="Analyze tiles", default=True),
        st.Page("views/region.py", title="Region view"),
        st.Page("views/validation.py", title="Validation browser"),
        st.Page("views/performance.py", title="Performance"),
        st.Page("views/model_card.py", title="Model card"),
        st.Page("views/teach.py", title="Teach"),
        st.Page("views/quiz.py", title="Take a quiz"),
    ])
    state.banner()
    frontend_preload.preload()  # the browser fetches the results views' code while the model loads
    # Loaded once per process. Waiting here, before any page imports its modules, also keeps this thread's
    # imports from running alongside the loader's (concurrent imports of one package can deadlock).
    predictor, load_error = state.load_predictor()
    sidebar(predictor, load_error)
    state.run_page(nav)


@asynccontextmanager
async def preload(_server):
    """Server start: begin loading the model in the background."""
    state.start_loading()
    yield


if __name__ == "__main__":
    main()
else:
    server = st.App(Path(__file__).resolve(), lifespan=preload)
