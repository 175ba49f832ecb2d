"""PathReview entry point: ``streamlit run app/main.py`` (from the repository root).

Every page view runs this file as a script (``__main__``), which draws the app. ``streamlit run`` also
imports it once when the server starts, because it defines ``server`` (an ``st.App`` serving this same
script): the app's libraries are then imported, the review store opened and the model loaded in the
background as soon as the server listens (``app.server_start``), rather than when the first browser
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

# The server answers nothing until this module is imported: the rest is imported in the background
from app.runtime import server_socket, server_start  # noqa: E402

if __name__ != "__main__":  # the server's import: the Slide page's deep-zoom tiles are served on its own port
    from app.inputs.deepzoom_routes import ROUTES

if __name__ == "__main__":  # a script run
    server_start.wait_for_imports()
    from sqlalchemy.exc import SQLAlchemyError

    from app import store
    from app.quiz import address
    from app.review import identity, reviewer
    from app.runtime import frontend_preload, state, warmup


def sidebar(pred, error: str | None) -> None:
    with st.sidebar:
        st.markdown("### PathReview")
        if pred is not None:
            st.caption(f"Model **{pred.card.get('name', '?')}** · sha256 `{pred.sha256[:12]}…` · "
                       f"threshold {pred.threshold(True):.3f} (TTA)")
        else:
            st.caption("No model loaded.")
        who = identity.sidebar()
        status = reviewer.status()
        if not status.ok:
            st.error(status.message, icon=":material/database:")
            return
        st.caption(f"{len(reviewer.session_reviews())} review(s) recorded in this session.")
        try:
            mine = store.reviews_frame(reviewer=who) if who else None
        except SQLAlchemyError as exc:
            st.error(f"The review store cannot be read ({type(exc).__name__}).")
            return
        st.download_button("Export my reviews (CSV)", store.export_csv(mine) if mine is not None else b"",
                           file_name="pathreview_reviews.csv", mime="text/csv", disabled=mine is None or mine.empty,
                           key="export-reviews", on_click="ignore")


def main() -> None:
    """One script run: the banner, the sidebar and the chosen page."""
    st.set_page_config(page_title="PathReview", layout="wide")  # default favicon: served locally, no CDN
    # No page icons: st.navigation turns a page icon into the favicon, fetched from a font CDN (offline sites).
    # A student answering a quiz (named in the page address) sees the quiz alone: no other page, no reviewer box.
    student = address.in_quiz(st.query_params)
    if student:
        nav = st.navigation([st.Page("views/quiz.py", title="Take a quiz", default=True)], position="hidden")
    else:
        nav = st.navigation([
            st.Page("views/analyze.py", title="Analyze tiles", default=True),
            st.Page("views/region.py", title="Region view"),
            st.Page("views/slide.py", title="Slide"),
            st.Page("views/cases.py", title="Cases"),
            st.Page("views/validation.py", title="Validation browser"),
            st.Page("views/queue.py", title="Review queue"),
            st.Page("views/agreement.py", title="Agreement"),
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
    if not student:
        sidebar(predictor, load_error)
    try:
        state.run_page(nav)
    finally:  # also after st.stop(), which the Analyze page calls while it waits for tiles
        warmup.after_first_page()


@asynccontextmanager
async def preload(_server):
    """Server start: no Nagle delays on the server's connections; the rest in the background."""
    server_socket.disable_nagle()  # the socket is bound and listening, and nothing has connected yet
    server_start.begin()
    yield


if __name__ == "__main__":
    main()
else:
    server = st.App(Path(__file__).resolve(), lifespan=preload, routes=ROUTES)
