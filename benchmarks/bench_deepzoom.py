"""Deep-zoom viewer speed with the server running (a script, not a test).

    PATHREVIEW_DATA=... PATHREVIEW_SLIDES=... .venv/bin/python benchmarks/bench_deepzoom.py [--cols 128 --rows 96]

For each of two slides (the shared Aperio SVS, and a large pyramidal TIFF built here from real validation
patches, ``--cols`` × ``--rows`` patches of 96 px), a fresh ``streamlit run`` server with that slide alone in its
folder, driven by Debian's Chromium:

* first view: the Slide page open on a small warm-up slide (model loaded, scored), from choosing the slide in
  the page's list to the viewer's first fully drawn view of it;
* zoom: once the slide is scored, four zoom-ins of 2× (one deep-zoom level each) on the slide's centre, 0.4 s
  apart as a reader would; the most tile requests in flight at once (counted from the browser's own request
  events) and the time until each view is complete;
* tile latency, cold cache: ``--tiles`` viewer tiles (254 px + overlap) the browser never asked for, so neither
  the server's tile cache nor the browser holds them, fetched one after another from the four finest levels over
  one keep-alive connection; p50 and p95 against the 50 ms target.

Prints the figures; nothing is asserted.
"""
from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_e2e import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402

SVS = "CMU-1-Small-Region.svs"
TARGET_P95_MS = 50
VIEWER = "document.querySelector('.pr-viewer')?.prViewer"


def build_large(data: Path, out: Path, cols: int, rows: int) -> Path:
    """A pyramidal TIFF of ``cols`` × ``rows`` real patches (repeated when the subset holds fewer)."""
    import numpy as np

    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset
    from model_training.slides.labelled import build

    tiles, labels, ids = stratified_subset(open_source(data, "valid"), min(cols * rows, 1500), seed=3).load_all()
    pick = np.arange(cols * rows) % len(tiles)
    build(tiles[pick], labels[pick], [ids[i] for i in pick], cols, out, levels=6)
    return out


def warm_up(data: Path, out: Path) -> None:
    """A small labelled slide that the page opens first (listed first), so the model is loaded when the measured
    slide is chosen."""
    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset
    from model_training.slides.labelled import build

    tiles, labels, ids = stratified_subset(open_source(data, "valid"), 24, seed=9).load_all()
    build(tiles, labels, ids, 6, out)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def measure(browser, slide: Path, data: Path, tmp: Path, n_tiles: int) -> dict:
    folder = slide.parent  # the slide and a small warm-up slide (a link out of the folder would not be listed)
    warm_up(data, folder / "0-warm-up.tiff")
    os.environ["PATHREVIEW_SLIDES"] = str(folder)
    from model_training.bundle.files import DEFAULT_BUNDLE

    proc, url = start_server(DEFAULT_BUNDLE, f"sqlite:///{tmp / (slide.stem + '.db')}", data, tmp / "server.log")
    out: dict = {"slide": slide.name}
    try:
        wait_healthy(url, proc)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(240_000)
        in_flight, peak, fetched = [0], [0], set()

        log: list = []  # (event, seconds) of tile requests, for where a zoom step's time goes

        def started(r):
            if "/slide_files/" in r.url:
                log.append(("start", time.perf_counter()))
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
                fetched.add(urlsplit(r.url).path)

        def ended(r):
            if "/slide_files/" in r.url:
                log.append(("end", time.perf_counter()))
                in_flight[0] -= 1

        page.on("request", started)
        page.on("requestfinished", ended)
        page.on("requestfailed", ended)
        page.goto(f"{url}/slide")
        page.get_by_text("flagged or uncertain tiles").wait_for()  # the warm-up slide, scored and shown
        page.wait_for_function(f"() => {VIEWER}?.firstFull", polling=50)
        peak[0] = in_flight[0]
        page.get_by_role("combobox").first.click()
        t0 = time.perf_counter()
        page.get_by_role("option", name=slide.name).click()
        page.wait_for_function(f"() => !{VIEWER}.firstFull", polling=20)  # the new slide's viewer is built
        out["viewer_built_s"] = time.perf_counter() - t0
        page.wait_for_function(f"() => {VIEWER}.firstFull", polling=20)
        out["first_view_s"] = time.perf_counter() - t0
        out["first_view_peak_in_flight"] = peak[0]
        # scored (the heat map is on): the server is idle again
        page.wait_for_function(f"() => {VIEWER}.heat && {VIEWER}.slide.getFullyLoaded()", polling=50)
        page.locator(".pr-viewer").scroll_into_view_if_needed()
        peak[0] = in_flight[0]
        steps = []
        for _ in range(4):
            t = time.perf_counter()
            del log[:]
            page.evaluate(f"() => {{ const s = {VIEWER}; s.viewer.viewport.zoomBy(2); }}")
            page.wait_for_timeout(400)
            page.wait_for_function(f"() => {VIEWER}.slide.getFullyLoaded()", polling=20)
            steps.append(time.perf_counter() - t)
            ends = [e for k, e in log if k == "end"]
            print(f"  zoom step: {sum(k == 'start' for k, _ in log)} tiles, last arrived after "
                  f"{(max(ends) - t) if ends else 0:.2f} s, view complete after {steps[-1]:.2f} s", flush=True)
        out["zoom_peak_in_flight"] = peak[0]
        out["zoom_step_s"] = steps
        base = page.evaluate(f"() => {VIEWER}.data.base")
        levels = page.evaluate(f"() => {VIEWER}.slide.source.maxLevel")
        size = page.evaluate(f"() => [{VIEWER}.data.width, {VIEWER}.data.height]")
        page.close()

        # cold tiles: from the four finest levels, none the browser asked for
        rng = random.Random(0)
        candidates = []
        for level in range(levels - 3, levels + 1):
            scale = 2 ** (levels - level)
            cols, rows = (math.ceil(math.ceil(side / scale) / 254) for side in size)
            for _ in range(n_tiles):
                path = f"{base}/slide_files/{level}/{rng.randrange(cols)}_{rng.randrange(rows)}.jpeg"
                if path not in fetched:
                    candidates.append(path)
        picks = list(dict.fromkeys(candidates))
        rng.shuffle(picks)
        picks = picks[:n_tiles]
        host = urlsplit(url)
        conn = http.client.HTTPConnection(host.hostname, host.port)
        times = []
        for path in picks:
            t = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            times.append((time.perf_counter() - t) * 1000)
            assert r.status == 200 and body[:2] == b"\xff\xd8", (path, r.status)
        conn.close()
        out["tiles"] = len(times)
        out["p50_ms"], out["p95_ms"], out["max_ms"] = pct(times, 50), pct(times, 95), max(times)
    finally:
        stop_server(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cols", type=int, default=128, help="patches across the large TIFF")
    ap.add_argument("--rows", type=int, default=96, help="patches down the large TIFF")
    ap.add_argument("--tiles", type=int, default=200, help="cold tiles fetched per slide")
    args = ap.parse_args()
    data, slides = os.environ.get("PATHREVIEW_DATA"), os.environ.get("PATHREVIEW_SLIDES")
    if not data or not slides or not (Path(slides) / SVS).is_file():
        sys.exit(f"Set PATHREVIEW_DATA (a PCam subset) and PATHREVIEW_SLIDES (a folder holding {SVS}).")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-deepzoom-"))
    try:
        t = time.perf_counter()
        (tmp / "svs").mkdir()
        svs = Path(shutil.copy(Path(slides) / SVS, tmp / "svs" / SVS))
        large = build_large(Path(data), tmp / "large" / "large.tiff", args.cols, args.rows)
        print(f"built {large.name}: {args.cols * 96:,}×{args.rows * 96:,} px, {large.stat().st_size / 2**20:.0f} MB "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for slide in (svs, large):
                r = measure(browser, slide, Path(data), tmp, args.tiles)
                verdict = "met" if r["p95_ms"] <= TARGET_P95_MS else "MISSED"
                print(f"{r['slide']}: first full view {r['first_view_s']:.2f} s after choosing the slide "
                      f"(viewer built after {r['viewer_built_s']:.2f} s; {r['first_view_peak_in_flight']} tile requests in flight "
                      "at most)", flush=True)
                print(f"{r['slide']}: zoom in 4 levels: each view complete in "
                      f"{', '.join(f'{s:.2f}' for s in r['zoom_step_s'])} s; at most {r['zoom_peak_in_flight']} "
                      "tile requests in flight", flush=True)
                print(f"{r['slide']}: cold tile latency over {r['tiles']} tiles: p50 {r['p50_ms']:.1f} ms, "
                      f"p95 {r['p95_ms']:.1f} ms (target <= {TARGET_P95_MS} ms) {verdict}, max {r['max_ms']:.1f} ms",
                      flush=True)
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
