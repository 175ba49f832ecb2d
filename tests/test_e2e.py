"""End to end: a real ``streamlit run`` server on 127.0.0.1 driven by Debian's Chromium through Playwright.

Screenshots go to $PATHREVIEW_SCREENSHOTS (default: a pytest temp dir, printed with -s).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from model_training.bundle.files import DEFAULT_BUNDLE, VAL_PRED_FILE
from model_training.bundle.files import sha256 as file_sha256
from model_training.data.decode import read_tile
from model_training.evaluation.metrics import at_threshold

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
LONG = 120_000  # ms: first scoring on 2 busy CPU cores can be slow
# The Analyze page's drop zone (app/inputs/drop_zone.js): its "Browse files" input, once the zone's script has
# taken it over (data-ready): files set on it before then change nothing the page listens to
DROP_INPUT = ".tile-drop[data-ready] input[type=file]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120, poll: float = 0.3) -> float:
    """Seconds until ``/_stcore/health`` answers (polled every ``poll`` s); raises if the server exits first."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(poll)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


def serve(env: dict, log: Path, *, root: Path = ROOT, cwd: Path | None = None,
          port: int | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run`` of the app in ``root`` (this checkout unless given), run in ``cwd`` (``root`` unless
    given; Streamlit reads ``.streamlit/`` there) on ``port`` (a free one unless given), with ``env`` over this
    process's environment and the shipped bundle unless ``env`` names another; its output to ``log``."""
    port = port or free_port()
    env = {**os.environ, "PATHREVIEW_MODEL": str(DEFAULT_BUNDLE), "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    env.pop("PATHREVIEW_DEBUG", None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(root / "app" / "main.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=cwd or root, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def site(bundle: Path, db_url: str, data: Path) -> dict:
    """The environment naming a bundle, a review store and a dataset."""
    return {"PATHREVIEW_MODEL": str(bundle), "PATHREVIEW_DB_URL": db_url, "PATHREVIEW_DATA": str(data)}


def start_server(bundle: Path, db_url: str, data: Path, log: Path, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """``serve`` with a bundle, a review store and a dataset."""
    return serve(site(bundle, db_url, data), log, root=root)


@contextmanager
def serving(env: dict, log: Path, **where):
    """The app served by ``serve`` (same arguments) and healthy, for the ``with`` block; stopped after it, and
    its log must then hold no traceback."""
    proc, url = serve(env, log, **where)
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop_server(proc)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


def running(bundle: Path, db_url: str, data: Path, log: Path):
    """``serving`` with a bundle, a review store and a dataset."""
    return serving(site(bundle, db_url, data), log)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def server(tiny_bundle, data_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    db_url, log = f"sqlite:///{tmp / 'reviews.db'}", tmp / "streamlit.log"
    with running(tiny_bundle, db_url, data_root, log) as url:
        yield {"url": url, "db": db_url, "log": log, "tmp": tmp}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("PATHREVIEW_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {out}")
    return out


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    elsewhere: list[str] = []  # the app must not reach beyond the server (no CDN fonts, icons, telemetry)
    ctx.on("request", lambda r: None if r.url.startswith((server["url"], "data:", "blob:"))
           else elsewhere.append(r.url))
    pg = ctx.new_page()
    pg.set_default_timeout(LONG)
    yield pg
    ctx.close()
    assert not elsewhere, elsewhere


def open_page(pg, server, path: str = "") -> None:
    pg.goto(f"{server['url']}/{path}")
    pg.get_by_text("Research use only — not for diagnosis.").first.wait_for()


def cells(pg) -> list[str]:
    return pg.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_inner_texts()


def test_upload_score_review_and_export(page, server, data_root, tiny_bundle, shots):
    pg = page
    tifs = sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:4]
    open_page(pg, server)
    pg.get_by_label("Reviewer name (required to record reviews)", exact=True).fill("e2e reviewer")
    pg.get_by_label("Reviewer name (required to record reviews)", exact=True).press("Enter")
    pg.locator(DROP_INPUT).set_input_files([str(p) for p in tifs])
    pg.get_by_text("4 tile(s) scored").wait_for()
    pg.get_by_text("Tile detail ·").wait_for()
    pg.wait_for_function("document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]')"
                         ".length >= 4 * 7")  # the grid draws its accessible cells after the canvas
    texts = cells(pg)
    for p in tifs:
        assert p.name in texts
    probs = [float(t) for t in texts if t.replace(".", "", 1).isdigit() and "." in t]
    assert len(probs) >= 4 and all(0 <= v <= 1 for v in probs)
    # the detail view: enlarged tile + Grad-CAM + Grad-CAM++ + 8 TTA views
    pg.get_by_text("Grad-CAM++", exact=True).wait_for()
    pg.wait_for_function("document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 11")
    p_detail = float(pg.locator('[data-testid="stMetricValue"]').first.inner_text())
    assert 0.0 <= p_detail <= 1.0
    pg.screenshot(path=str(shots / "analyze_table.png"))
    pg.get_by_text("Tile detail ·").scroll_into_view_if_needed()
    pg.mouse.wheel(0, 300)
    pg.wait_for_timeout(500)
    pg.screenshot(path=str(shots / "analyze_detail.png"))

    detail_name = pg.get_by_text("Tile detail ·").inner_text().split("· ", 1)[1].strip()
    pg.get_by_text("Disagree", exact=True).click()
    pg.get_by_label("Comment (optional)", exact=True).fill("e2e: looks like reactive lymphocytes")
    pg.get_by_role("button", name="Record review", exact=True).click()
    pg.get_by_text("1 review(s) recorded in this session.").wait_for()

    with pg.expect_download() as dl:
        pg.get_by_role("button", name="Export my reviews (CSV)").click()
    exported = Path(dl.value.path()).read_text("utf-8")
    header, first = exported.splitlines()[:2]
    assert header.endswith(",notice") and "Research use only — not for diagnosis." in first
    from app import store
    from app.store.audit_csv import read_csv_export

    rows = read_csv_export(exported)
    assert list(rows.columns) == store.EXPORT_COLUMNS and len(rows) == 1
    row = rows.iloc[0]
    tile = read_tile(next(p for p in tifs if p.name == detail_name))
    import hashlib

    assert row["file"] == detail_name and row["review"] == "disagree" and row["reviewer"] == "e2e reviewer"
    assert row["pixel_sha256"] == hashlib.sha256(tile.tobytes()).hexdigest()
    assert row["model_sha256"] == file_sha256(tiny_bundle / "model.keras")
    assert float(row["p"]) == pytest.approx(p_detail, abs=6e-4)
    logged = read_csv_export(store.export_csv(store.reviews_frame(url=server["db"])))
    assert len(logged) == 1 and logged.iloc[0].to_dict() == row.to_dict()
    assert row["source"] == "upload" and row["upload_name"] == detail_name


def test_a_zip_of_tiles_uploads_in_the_browser(page, server, data_root, tmp_path):
    """The drop zone takes a .zip and the page scores its tiles."""
    import zipfile

    tifs = sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:5]
    archive = tmp_path / "case 7.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for p in tifs:
            z.write(p, f"case 7/{p.name}")
    open_page(page, server)
    page.locator(DROP_INPUT).set_input_files([str(archive)])
    page.get_by_text("5 tile(s) scored").wait_for()
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]')"
                           ".length >= 5 * 7")
    texts = cells(page)
    assert all(p.name in texts for p in tifs)


def test_the_tile_picker_names_a_tile_of_the_new_drop(page, server, data_root):
    """After the dropped files are cleared and others dropped, the picker names one of the new tiles: a keyed
    Streamlit select box would otherwise keep showing the label it had for the previous drop."""
    tifs = sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:4]
    picker = page.locator('[class*="st-key-analyze-pick"] input')
    open_page(page, server)
    page.locator(DROP_INPUT).set_input_files([str(p) for p in tifs[:2]])
    page.get_by_text("2 tile(s) scored").wait_for()
    page.get_by_text("Tile detail ·").wait_for()
    assert picker.input_value().split(" · ")[0] in {p.name for p in tifs[:2]}
    page.get_by_role("button", name="Clear the 2 dropped file(s)").click()
    page.get_by_text("Drop tiles above to score them.").wait_for()
    page.locator(DROP_INPUT).set_input_files([str(p) for p in tifs[2:]])
    page.get_by_text("2 tile(s) scored").wait_for()
    shown = page.get_by_text("Tile detail ·").inner_text().split("· ", 1)[1].strip()
    assert shown in {p.name for p in tifs[2:]}
    assert picker.input_value().split(" · ")[0] == shown


def drag_and_drop(page, paths: list[Path], target: str = ".tile-drop") -> None:
    """Drag files and folders from the desktop onto ``target``, as the operating system would hand them over."""
    # the zone is drawn before its script takes drops: one sent earlier is lost
    box = page.locator(f"{target}[data-ready]").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)
    drag = {"items": [], "files": [str(p) for p in paths], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        cdp.send("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": drag})
    cdp.detach()


def test_a_dropped_folder_is_walked_and_oversized_or_foreign_files_are_named(page, server, data_root, tmp_path):
    """A folder dragged onto the drop zone: tiles in it and below it are scored, the rest named with a reason."""
    import shutil

    tifs = sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:3]
    folder = tmp_path / "case 9"
    (folder / "level 2").mkdir(parents=True)
    shutil.copy(tifs[0], folder)
    shutil.copy(tifs[1], folder / "level 2")
    (folder / "notes.txt").write_text("stain batch 7")
    (folder / "overview.png").write_bytes(b"\0" * (6 * 2**20))  # over the 5 MB tile limit: never sent
    open_page(page, server)
    drag_and_drop(page, [folder, tifs[2]])
    page.get_by_text("3 tile(s) scored").wait_for()
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]')"
                           ".length >= 3 * 7")
    assert {p.name for p in tifs} <= set(cells(page))
    alerts = [t.split("\n")[-1] for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts()]
    assert sorted(alerts) == ["case 9/notes.txt: not a tile image (.tif .png .jpg) or a .zip of tiles; skipped",
                              "case 9/overview.png: is 6.0 MB; the limit for a tile is 5 MB"]
    page.get_by_role("button", name="Clear the 5 dropped file(s)").click()
    page.get_by_text("Drop tiles above to score them.").wait_for()


def test_region_heatmap(page, server, data_root, shots):
    labels = pd.read_csv(data_root / "valid_labels.csv")
    ids = [i for pair in zip(labels[labels.label == 1].id, labels[labels.label == 0].id) for i in pair][:12]
    tiles = [read_tile(data_root / "valid" / f"{i}.jpg") for i in ids]
    img = np.concatenate([np.concatenate(tiles[r * 4:(r + 1) * 4], axis=1) for r in range(3)])
    path = server["tmp"] / "region.png"
    Image.fromarray(img).save(path)
    open_page(page, server, "region")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.locator(".js-plotly-plot .heatmaplayer image").first.wait_for(state="attached")
    page.get_by_text("Tiles scored").wait_for()
    assert "12" in page.locator('[data-testid="stMetricValue"]').first.inner_text()
    page.get_by_text("Tiles scored").scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / "region_heatmap.png"))

    # clicking a cell of the map opens that tile in the detail view
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    heading = page.get_by_text("region.png @ x=").first
    opened = heading.inner_text()
    x, y = (0, 0) if "@ x=288, y=192" in opened else (288, 192)
    centre = page.evaluate("""([x, y]) => {
        const gd = document.querySelector('.js-plotly-plot'), fl = gd._fullLayout, bb = gd.getBoundingClientRect();
        return [bb.left + fl.xaxis._offset + fl.xaxis.l2p(x), bb.top + fl.yaxis._offset + fl.yaxis.l2p(y)];
    }""", [x + 48, y + 48])
    page.mouse.click(*centre)
    page.get_by_text(f"region.png @ x={x}, y={y}").first.wait_for()


def test_performance_threshold_slider(page, server, tiny_bundle, shots):
    open_page(page, server, "performance")
    values = page.locator('[data-testid="stMetricValue"]')
    values.first.wait_for()
    before = values.all_inner_texts()
    slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    page.keyboard.press("PageUp")  # +0.1
    new_thr = float(slider.input_value())
    page.wait_for_function("([el, old]) => el.innerText !== old",
                           arg=[values.first.element_handle(), before[0]])
    after = values.all_inner_texts()
    vp = pd.read_csv(tiny_bundle / VAL_PRED_FILE, dtype={"p": np.float32})
    m = at_threshold(vp["label"].to_numpy(), vp["p"].to_numpy(), new_thr)
    assert after[0] == f"{m['sensitivity']:.3f}" and after[1] == f"{m['specificity']:.3f}"
    assert after != before
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / "performance.png"))
