"""End to end on the Slide page: a real ``streamlit run`` server, Debian's Chromium, the real Aperio slide.

A reviewer opens the slide from the operator's folder in the deep-zoom viewer, zooms to full resolution (the
tiles arrive whole), finds the heat map and a flagged tile's box on the pixels the tiles CSV gives, clicks the tile
to open its detail, steps to the next flagged tile with the key n, and records a review that keeps the slide and
the tile's level-0 position.
"""
from __future__ import annotations

import io
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import pytest
from test_e2e import LONG, serving
from real_inputs import SVS

from app import store
from app.store import db, service
from model_training.slides.outputs import colourize

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def slide_folder(tmp_path) -> Path:
    src = os.environ.get("PATHREVIEW_SLIDES")
    if not src or not (Path(src) / SVS).is_file():
        pytest.skip(f"PATHREVIEW_SLIDES is not set to a folder holding {SVS} (../shared/slides)")
    folder = tmp_path / "slides"
    folder.mkdir()
    shutil.copy(Path(src) / SVS, folder / SVS)
    return folder


@pytest.fixture
def url_db(tmp_path) -> Iterator[str]:
    """The server's review store; this process's handles on it are released after the test."""
    yield f"sqlite:///{tmp_path / 'reviews.db'}"
    service.forget()
    db.dispose_all()


def test_open_a_slide_see_the_heat_map_open_a_flagged_tile_and_review_it(slide_folder, url_db, browser, tmp_path):
    shots = Path(os.environ.get("PATHREVIEW_SCREENSHOTS") or tmp_path)
    with serving({"PATHREVIEW_SLIDES": str(slide_folder), "PATHREVIEW_DB_URL": url_db},
                 tmp_path / "streamlit.log") as url:
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(LONG)
        tiles = []  # every deep-zoom tile response the browser got
        pg.on("response", lambda r: tiles.append(r) if "/slide_files/" in r.url else None)
        pg.goto(f"{url}/slide")
        pg.get_by_text("to look at: ").wait_for()
        viewer = pg.locator(".pr-viewer")
        viewer.evaluate("e => e.scrollIntoView({block: 'center'})")  # the whole viewer on screen
        pg.wait_for_function("() => document.querySelector('.pr-viewer')?.prViewer?.heat "
                             "&& document.querySelector('.pr-viewer').prViewer.firstFull")
        pg.screenshot(path=str(shots / "slide.png"))
        with pg.expect_download() as dl:
            pg.get_by_role("button", name="Tiles CSV").click()
        csv = pd.read_csv(dl.value.path())
        boxes = pg.evaluate("() => document.querySelector('.pr-viewer').prViewer.data.boxes")
        # the most probable assessed tile leads (tiles the gate did not assess are no flags): red when the
        # slide-level answer flags any tile, as it then flags this one, orange otherwise
        x, y, w, h, kind = boxes[0]
        row = csv[(csv.x == x) & (csv.y == y)].iloc[0]
        assessed = csv[csv.decision != "not assessed"]
        assert (row.width, row.height) == (w, h) and kind in ("f", "r") and row.p == pytest.approx(assessed.p.max())
        assert [b[4] for b in boxes] == sorted((b[4] for b in boxes))  # red ones first
        assert {(b[0], b[1]) for b in boxes}.isdisjoint(zip(csv.x[csv.decision == "not assessed"],
                                                            csv.y[csv.decision == "not assessed"]))
        # the viewer and the list below it count the same tiles, and call flagged only the red ones
        red = sum(b[4] == "f" for b in boxes)
        assert pg.locator(".pr-status").inner_text().startswith(f"{len(boxes)} to look at, {red} flagged: n / p")
        assert f"{len(boxes)} tiles to look at: {red} flagged (red), {len(boxes) - red} worth a look" in \
            pg.locator("body").inner_text()

        # full resolution on that tile, the heat map opaque, outline and boxes hidden: the tiles arrive whole and
        # the heat map's colour at the tile's centre is the CSV's P(tumour) on the colour scale
        with pg.expect_response(lambda r: "/slide_files/12/" in r.url):
            pg.evaluate("""([x, y, w, h]) => { const s = document.querySelector('.pr-viewer').prViewer;
                s.opacity.value = 1; s.opacity.dispatchEvent(new Event('input'));
                s.showTissue.click(); s.showBoxes.click();
                s.viewer.viewport.fitBounds(s.slide.imageToViewportRectangle(x - w, y - h, 3 * w, 3 * h), true);
                s.viewer.viewport.zoomTo(s.slide.imageToViewportZoom(1), null, true); }""", [x, y, w, h])
        pg.wait_for_function("() => document.querySelector('.pr-viewer').prViewer.slide.getFullyLoaded()")
        pg.wait_for_timeout(500)
        deepest = [(r.url, r.status, r.body()) for r in tiles if "/slide_files/12/" in r.url]
        assert deepest and all(status == 200 for _, status, _ in deepest)
        for name, _, body in deepest:
            col, rw = (int(v) for v in name.rsplit("/", 1)[1].removesuffix(".jpeg").split("_"))
            want = (min(2220, 254 * (col + 1) + 1) - max(0, 254 * col - 1), min(2967, 254 * (rw + 1) + 1) - max(0, 254 * rw - 1))
            assert Image.open(io.BytesIO(body)).size == want, name
        canvas = pg.locator(".pr-osd .openseadragon-canvas").first
        shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
        centre = pg.evaluate("""([x, y]) => { const s = document.querySelector('.pr-viewer').prViewer;
            const p = s.slide.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y)); return [p.x, p.y]; }""",
                             [x + w / 2, y + h / 2])
        cx, cy = (round(v) for v in centre)
        assert np.abs(shot[cy, cx] - colourize(np.array([row.p]))[0]).max() <= 12, (shot[cy, cx], row.p)
        # the tile's box (boxes shown again) lands on the tile's level-0 corners
        pg.evaluate("() => document.querySelector('.pr-viewer').prViewer.showBoxes.click()")
        box = pg.locator(".pr-box[data-index='0']").bounding_box()
        on_page = """([x, y]) => { const s = document.querySelector('.pr-viewer').prViewer;
            const p = s.slide.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
            const r = s.viewer.element.getBoundingClientRect(); return [p.x + r.left, p.y + r.top]; }"""
        x0, y0 = pg.evaluate(on_page, [x, y])
        x1, y1 = pg.evaluate(on_page, [x + w, y + h])
        assert max(abs(box["x"] - x0), abs(box["y"] - y0), abs(box["x"] + box["width"] - x1),
                   abs(box["y"] + box["height"] - y1)) <= 2, (box, (x0, y0, x1, y1))

        # a click on the tile opens its detail; n steps to the next tile to look at and centres it
        field = pg.get_by_label("Reviewer name (required to record reviews)", exact=True)
        field.fill("dr. slide")
        field.press("Enter")
        pg.wait_for_timeout(1000)
        viewer.scroll_into_view_if_needed()
        pg.mouse.click(*pg.evaluate(on_page, [x + w / 2, y + h / 2]))
        pg.get_by_text(f"@ x={x}, y={y}").first.wait_for()
        pg.wait_for_function("() => document.querySelector('.pr-viewer').prViewer.data.selected === 0")
        nx, ny, nw, nh, _ = boxes[1]
        pg.locator(".pr-osd .openseadragon-canvas").first.focus()
        pg.keyboard.press("n")
        pg.get_by_text(f"@ x={nx}, y={ny}").first.wait_for()
        pg.wait_for_timeout(1500)  # the pan's animation
        seen = pg.evaluate("""() => { const s = document.querySelector('.pr-viewer').prViewer;
            const c = s.slide.viewportToImageCoordinates(s.viewer.viewport.getCenter(true)); return [c.x, c.y]; }""")
        assert abs(seen[0] - (nx + nw / 2)) < nw / 4 and abs(seen[1] - (ny + nh / 2)) < nh / 4, (seen, boxes[1])
        assert pg.evaluate("() => document.querySelector('.pr-viewer').prViewer.data.selected") == 1
        said = {"f": "flagged", "r": "worth a look"}[boxes[1][4]]
        assert pg.locator(".pr-status").inner_text() == (f"{len(boxes)} to look at, {red} flagged · tile 2, {said}: "
                                                         "n / p for the next / previous")
        title = pg.get_by_text("Tile detail ·")
        title.wait_for()
        where = title.inner_text().split("@ ")[1]  # "x=1122, y=935"
        assert where == f"x={nx}, y={ny}"
        pg.get_by_text("Agree", exact=True).click()
        pg.get_by_role("button", name="Record review", exact=True).click()
        pg.get_by_text("1 review(s) recorded in this session.").wait_for()

        # the same slide uploaded instead of opened from the folder: scored and shown the same way
        up = browser.new_page(viewport={"width": 1400, "height": 1100})
        up.set_default_timeout(LONG)
        up.goto(f"{url}/slide")
        up.get_by_text("Upload", exact=True).click()
        up.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(slide_folder / SVS))
        up.get_by_text("to look at: ").wait_for()
        assert f"{SVS} · 2,220×2,967 px" in up.locator("body").inner_text()
        up.locator(".pr-osd canvas").first.wait_for()  # the upload opens in the viewer too, under its own id
        ids = {pg.evaluate("() => document.querySelector('.pr-viewer').prViewer.data.base"),
               up.evaluate("() => document.querySelector('.pr-viewer').prViewer.data.base")}
        assert len(ids) == 2
        for path in (f"/dz/{'A' * 32}/slide.dzi", f"/dz/{SVS}/slide.dzi", f"{min(ids)}/slide_files/99/0_0.jpeg"):
            with pytest.raises(urllib.error.HTTPError) as refused:  # the real server: a plain 404
                urllib.request.urlopen(url + path)
            assert refused.value.code == 404 and refused.value.read() == b"Not Found"
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
