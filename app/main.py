"""PathReview entry point: ``streamlit run app/main.py`` (from the repository root)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import audit, state  # noqa: E402

st.set_page_config(page_title="PathReview", layout="wide")  # default favicon: served locally, no CDN

# No page icons: st.navigation turns a page icon into the favicon, fetched from a font CDN (offline sites).
PAGES = [
    st.Page("views/analyze.py", title="Analyze tiles", default=True),
    st.Page("views/region.py", title="Region view"),
    st.Page("views/validation.py", title="Validation browser"),
    st.Page("views/performance.py", title="Performance"),
    st.Page("views/model_card.py", title="Model card"),
]


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


nav = st.navigation(PAGES)
state.banner()
predictor, load_error = state.load_predictor()  # loaded and warmed once per process
sidebar(predictor, load_error)
state.run_page(nav)
