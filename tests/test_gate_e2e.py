"""The quality gate in the browser: an out-of-focus tile is "not assessed", never a tumour or normal call."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_e2e import DROP_INPUT, LONG, running

from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.data.sources import open_source
from model_training.evaluation.derived import blurred

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BUNDLE = DEFAULT_BUNDLE


@pytest.fixture(scope="module")
def server(data_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gate-e2e")
    with running(BUNDLE, f"sqlite:///{tmp / 'reviews.db'}", data_root, tmp / "streamlit.log") as url:
        yield {"url": url, "tmp": tmp}


def test_an_out_of_focus_tile_shows_as_not_assessed(browser, server, data_root):
    x = open_source(data_root, "valid").subset(range(1, 41, 2)).load_all()[0]
    sharp = x[int(np.argmax([t.astype(float).std() for t in x]))]  # a clearly textured tile
    files = []
    for name, tile in (("a-sharp.png", sharp), ("b-out-of-focus.png", blurred(sharp[None])[0])):
        path = server["tmp"] / name
        Image.fromarray(tile).save(path)
        files.append(str(path))
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(LONG)
    try:
        pg.goto(server["url"])
        pg.get_by_text("Research use only — not for diagnosis.").first.wait_for()
        pg.locator(DROP_INPUT).set_input_files(files)
        pg.get_by_text("2 tile(s) scored").wait_for()
        pg.wait_for_function("document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]')"
                             ".length >= 2 * 6")
        rows = pg.locator('[data-testid="stDataFrame"] [role="row"]').all_inner_texts()
        blurred_row = next(r for r in rows if "b-out-of-focus.png" in r)
        sharp_row = next(r for r in rows if "a-sharp.png" in r)
        assert "not assessed" in blurred_row and "blur" in blurred_row
        assert "not assessed" not in sharp_row and ("tumour" in sharp_row or "normal" in sharp_row)
        # open the blurred tile: the detail says why, and the model makes no call
        pg.get_by_label("Open a tile (highest P first)").click()
        pg.keyboard.type("out-of-focus")
        pg.keyboard.press("Enter")
        pg.get_by_text("Not assessed: out of focus.").wait_for()
        assert pg.get_by_test_id("stMetricValue").filter(has_text="not assessed").count() == 1
    finally:
        ctx.close()
