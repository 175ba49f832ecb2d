"""End to end on the Slide page: a real ``streamlit run`` server, Debian's Chromium, the real Aperio slide.

A reviewer opens the slide from the operator's folder, sees the heat map, opens a flagged tile from the
gallery and records a review that keeps the slide and the tile's level-0 position.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_e2e import LONG, stop_server, wait_healthy
from test_slides import SVS
from test_store_e2e import serve

from app import store
from app.store import db, service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def slide_folder(tmp_path) -> Path:
    src = os.environ.get("PATHREVIEW_SLIDES")
    if not src or not (Path(src) / SVS).is_file():
        pytest.skip(f"PATHREVIEW_SLIDES is not set to a folder holding {SVS} (../shared/slides)")
    folder = tmp_path / "slides"
    folder.mkdir()
    shutil.copy(Path(src) / SVS, folder / SVS)
    return folder


def test_open_a_slide_see_the_heat_map_open_a_flagged_tile_and_review_it(slide_folder, browser, tmp_path):
    url_db = f"sqlite:///{tmp_path / 'reviews.db'}"
    proc, url = serve(ROOT, {"PATHREVIEW_SLIDES": str(slide_folder), "PATHREVIEW_DB_URL": url_db},
                      tmp_path / "streamlit.log")
    shots = Path(os.environ.get("PATHREVIEW_SCREENSHOTS") or tmp_path)
    try:
        wait_healthy(url, proc)
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(LONG)
        pg.goto(f"{url}/slide")
        pg.get_by_text("flagged or uncertain tiles").wait_for()
        chart = pg.locator(".js-plotly-plot").first
        chart.wait_for()
        assert "click a place to open it" in chart.inner_text()
        assert chart.locator("image").count() >= 1  # the thumbnail with its heat map
        chart.scroll_into_view_if_needed()
        pg.wait_for_timeout(1000)
        pg.screenshot(path=str(shots / "slide.png"))

        field = pg.get_by_label("Reviewer name (required to record reviews)", exact=True)
        field.fill("dr. slide")
        field.press("Enter")
        pg.locator("[class*='st-key-slide-open-'] button").first.click()
        title = pg.get_by_text("Tile detail ·")
        title.wait_for()
        where = title.inner_text().split("@ ")[1]  # "x=1122, y=935"
        pg.get_by_text("Agree", exact=True).click()
        pg.get_by_role("button", name="Record review", exact=True).click()
        pg.get_by_text("1 review(s) recorded in this session.").wait_for()

        # the same slide uploaded instead of opened from the folder: scored and shown the same way
        up = browser.new_page(viewport={"width": 1400, "height": 1100})
        up.set_default_timeout(LONG)
        up.goto(f"{url}/slide")
        up.get_by_text("Upload", exact=True).click()
        up.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(slide_folder / SVS))
        up.get_by_text("flagged or uncertain tiles").wait_for()
        assert f"{SVS} · 2,220×2,967 px" in up.locator("body").inner_text()
        # slides are large: a 60 MB upload reaches the page (and is refused for what it is, not its size)
        junk = tmp_path / "scan.svs"
        junk.write_bytes(os.urandom(60 * 2 ** 20))
        up.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(junk))
        up.get_by_text("scan.svs: is not a slide format OpenSlide reads").wait_for()
        pg.close()
        up.close()
        rows = store.reviews_frame(url=url_db)
        assert rows["reviewer"].tolist() == ["dr. slide"] and rows["source"].tolist() == ["slide"]
        assert rows["slide"].iloc[0] == SVS
        assert f"x={int(rows['x'].iloc[0])}, y={int(rows['y'].iloc[0])}" == where
    finally:
        stop_server(proc)
        service.forget()
        db.dispose_all()
    log = (tmp_path / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
