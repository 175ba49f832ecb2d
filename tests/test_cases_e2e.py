"""End to end on the Cases page: a real ``streamlit run`` server, Debian's Chromium, case slides built from real
validation patches and scored by a batch run. A pathologist signs a case out and sees the worklist update,
then opens a case in the Slide page, which shows the tiles as the batch run scored them (no rescoring), picks
the other by its row in the worklist and signs it out in the Slide page, and downloads the record of both sign-outs."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from case_slides import small_cases
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_e2e import LONG, serving

from app import store
from app.store import db, service
from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.slides.batch import BatchJob, run_batch

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MARK = 4242  # tiles/s written into the stored summaries: the Slide page shows it only for a stored result


@pytest.fixture
def cases(data_root, tmp_path) -> Iterator[dict]:
    """Two case slides in a slide folder, scored by a batch run and added to a SQLite store."""
    folder = tmp_path / "slides"
    paths = small_cases(data_root, folder, 2, half=0, seed=8)
    out = tmp_path / "out"
    run_batch(paths, BatchJob(str(DEFAULT_BUNDLE), "onnx-int8", str(out)), progress=False)
    for p in paths:
        summary = out / f"{p.name}.summary.json"
        s = json.loads(summary.read_text())
        s["timings"]["tiles_per_s"] = MARK
        summary.write_text(json.dumps(s))
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    assert store.open_store(url).ok
    assert store.add_batch(out, {"case-1.tiff": 1, "case-0.tiff": 0}, url=url)["added"] == 2
    service.forget()
    db.dispose_all()
    yield {"url": url, "folder": folder}
    service.forget()  # the test's own handles on the store
    db.dispose_all()


def click_row(pg: Page, row: int, then: Locator) -> None:
    """Click the marker of the worklist table's ``row`` (from 0) until ``then`` shows. The table is drawn on a
    canvas that takes clicks only once its grid is laid out, which nothing in the page's DOM announces."""
    table = pg.locator(".st-key-cases-table")
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    for _ in range(20):
        pg.mouse.click(box["x"] + 20, box["y"] + 35 * (row + 1.5))  # the header and each row are 35 px high
        try:
            then.wait_for(timeout=2000)
            return
        except PlaywrightTimeout:
            continue
    then.wait_for()


def test_sign_out_a_case_and_open_it_in_the_slide_page(cases, browser, tmp_path):
    shots = Path(os.environ.get("PATHREVIEW_SCREENSHOTS") or tmp_path)
    with serving({"PATHREVIEW_SLIDES": str(cases["folder"]), "PATHREVIEW_DB_URL": cases["url"]},
                 tmp_path / "streamlit.log") as url:
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(LONG)
        pg.goto(f"{url}/cases")
        pg.get_by_text("2 new · 0 in review · 0 signed out").wait_for()
        first = store.worklist(url=cases["url"]).slide.iloc[0]  # the highest slide score is listed first
        pg.screenshot(path=str(shots / "cases-new.png"))
        assert pg.locator(".st-key-cases-pick input").input_value().startswith(f"{first} · score")
        field = pg.get_by_label("Reviewer name (required to record reviews)", exact=True)
        field.fill("dr. case")
        field.press("Enter")
        pg.locator(".st-key-cases-call").get_by_text("metastasis", exact=True).click()
        pg.get_by_label("Comment").fill("tumour cells in a cluster")
        pg.get_by_role("button", name="Sign out as dr. case").click()
        pg.get_by_text("1 new · 0 in review · 1 signed out").wait_for()
        pg.get_by_text("Status: signed out, latest call metastasis by dr. case: “tumour cells in a cluster”").wait_for()
        pg.screenshot(path=str(shots / "cases.png"))
        rows = store.signouts_frame(url=cases["url"])
        assert rows[["slide", "reviewer", "call"]].values.tolist() == [[first, "dr. case", "metastasis"]]

        pg.get_by_role("button", name="Open in the Slide page").click()
        pg.get_by_text(f"{MARK:,}", exact=True).wait_for()  # the stored scores, not a new scoring run
        assert f"{first} ·" in pg.locator("body").inner_text()

        # the other case, opened from the worklist: the way back picks it again, not the top of the list
        second = store.worklist(url=cases["url"]).slide.iloc[1]
        pg.get_by_role("link", name="Back to this case in the worklist").click()
        pg.get_by_text("Status: signed out").wait_for()
        assert pg.locator(".st-key-cases-pick input").input_value().startswith(f"{first} · score")
        # picked by its row in the worklist table: the second row's marker (rows and header 35 px high)
        click_row(pg, 1, pg.get_by_text("Status: new, not signed out yet."))
        assert pg.locator(".st-key-cases-pick input").input_value().startswith(f"{second} · score")
        pg.get_by_role("button", name="Open in the Slide page").click()
        pg.get_by_text(f"{MARK:,}", exact=True).wait_for()
        assert f"{second} ·" in pg.locator("body").inner_text()
        # signed out from the Slide page itself, under the same identity, into the same table
        pg.get_by_text("Sign out this case (new)").click()
        pg.locator(".st-key-slide-case-call").get_by_text("no metastasis", exact=True).click()
        pg.get_by_label("Comment").fill("reactive sinus histiocytes")
        pg.get_by_role("button", name="Sign out as dr. case").click()
        pg.get_by_text("Sign out this case (signed out)").wait_for()
        pg.get_by_role("link", name="Back to this case in the worklist").click()
        pg.get_by_text("Status: signed out, latest call no metastasis by dr. case: “reactive sinus histiocytes”").wait_for()
        assert pg.locator(".st-key-cases-pick input").input_value().startswith(f"{second} · score")
        pg.get_by_text("0 new · 0 in review · 2 signed out").wait_for()
        # the lab's record: both sign-outs, each with its reviewer, its case's file and the model's answer
        with pg.expect_download() as dl:
            pg.get_by_role("button", name="Sign-outs (CSV)").click()
        record = pd.read_csv(dl.value.path())
        assert record[["slide", "reviewer", "call"]].values.tolist() == [[first, "dr. case", "metastasis"],
                                                                         [second, "dr. case", "no_metastasis"]]
        assert record.comment.tolist() == ["tumour cells in a cluster", "reactive sinus histiocytes"]
        assert record.slide_sha256.str.len().eq(64).all() and record.current.all()
        pg.close()
