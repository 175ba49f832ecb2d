"""App speed in a real browser (a script, not a test).

    PATHREVIEW_DATA=/path/to/pcam-subset .venv/bin/python benchmarks/bench_app.py [--bundle DIR]

One run starts a real ``streamlit run app/main.py`` server and drives it with Debian's Chromium through
Playwright (only 127.0.0.1 is contacted). It measures the three app budgets:

* server start: from spawning the server to the Analyze page showing the model ready (the sidebar names the
  loaded model and the drop zone is shown);
* one tile: from choosing one real tile in the drop zone ("Browse files") to its result row and the detail
  view with both Grad-CAM maps drawn;
* 200 tiles: from choosing 200 real validation tiles as separate files to the results table; then the same
  200 tiles as one .zip archive.

Prints each figure against its budget (met / MISSED); nothing is asserted. The browser is launched before
the server, so the first figure is the app's own start.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_e2e import CHROMIUM, CHROMIUM_ARGS, DROP_INPUT, start_server, stop_server, wait_healthy  # noqa: E402

BUDGETS = {"start": 3.0, "one": 0.8, "batch": 2.5}  # seconds
TABLE = '[data-testid="stDataFrame"]'
# Both heat maps of the detail view are on screen: their <img> is loaded and has a size.
CAMS_DRAWN = """() => ['Grad-CAM', 'Grad-CAM++'].every(name =>
    [...document.querySelectorAll('[data-testid="stImageCaption"]')].some(cap => {
        if (cap.innerText.trim() !== name) return false;
        const img = cap.closest('[data-testid="stImage"]')?.querySelector('img')
                    ?? cap.parentElement.querySelector('img');
        return img && img.complete && img.naturalWidth > 0;
    }))"""


FIGURES: dict[tuple[str, str], list[float]] = {}  # (figure, budget key) -> seconds, one per run


def budget(name: str, seconds: float, key: str) -> None:
    target = BUDGETS[key]
    FIGURES.setdefault((name, key), []).append(seconds)
    print(f"budget {name}: {seconds:.2f} s (target <= {target:g}) {'met' if seconds <= target else 'MISSED'}",
          flush=True)


def summary() -> None:
    """Each figure over all runs: the machine is noisy, so one run says little on its own."""
    import statistics

    for (name, key), values in FIGURES.items():
        met = sum(v <= BUDGETS[key] for v in values) if key in BUDGETS else None
        print(f"over {len(values)} runs, {name}: median {statistics.median(values):.2f} s, "
              f"{min(values):.2f}-{max(values):.2f}"
              + (f", target <= {BUDGETS[key]:g} met in {met} of {len(values)}" if met is not None else ""),
              flush=True)


def wait_model_ready(page) -> None:
    """The Analyze page with the model ready: the sidebar names the loaded model, the drop zone is there."""
    page.locator('[data-testid="stSidebar"]').get_by_text("sha256").first.wait_for()
    page.locator(DROP_INPUT).wait_for(state="attached")


def upload(page, files: list[Path], n: int, *, detail: bool) -> float:
    """Seconds from choosing ``files`` in the drop zone to the results table (and the detail view's maps).

    For a batch it also prints where the time went: until the page shows its scoring progress bar, the
    browser reads and sends the files and the server decodes them; after it, the server scores and the
    browser draws.
    """
    t0 = time.perf_counter()
    page.locator(DROP_INPUT).set_input_files([str(f) for f in files])
    if not detail:
        page.get_by_text(f"Scoring {n} tile(s)").wait_for()
        print(f"  {n} tiles: reading, sending and decoding {time.perf_counter() - t0:.2f} s, then scoring "
              f"{n} x 8 views and drawing the results", flush=True)
    page.get_by_text(f"{n} tile(s) scored").wait_for()
    page.locator(TABLE).first.wait_for(state="visible")
    if detail:
        page.wait_for_function(CAMS_DRAWN, polling="raf")
    return time.perf_counter() - t0


def run(bundle: Path, data: Path, n_batch: int) -> None:
    from playwright.sync_api import sync_playwright

    tiles = sorted((data / "valid").glob("*.jpg"))
    if len(tiles) < n_batch + 1:
        sys.exit(f"{data / 'valid'} holds {len(tiles)} tiles; {n_batch + 1} are needed")
    tmp = Path(tempfile.mkdtemp(prefix="pathreview-bench-"))
    log = tmp / "streamlit.log"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(300_000)
        t0 = time.perf_counter()
        proc, url = start_server(bundle, f"sqlite:///{tmp / 'reviews.db'}", data, log)
        try:
            wait_healthy(url, proc, poll=0.02)  # the default 0.3 s would blur the start-up figure
            t_listen = time.perf_counter() - t0
            page.goto(url)
            wait_model_ready(page)
            t_ready = time.perf_counter() - t0
            print(f"server start -> health endpoint answers: {t_listen:.2f} s")
            budget("server start -> first page, model ready", t_ready, "start")
            budget("one tile -> result row + detail view", upload(page, tiles[n_batch:n_batch + 1], 1, detail=True),
                   "one")
            page.goto(url)  # a fresh session: the batch replaces nothing
            wait_model_ready(page)
            budget(f"{n_batch} tiles -> results table", upload(page, tiles[:n_batch], n_batch, detail=False),
                   "batch")
            archive = tmp / f"{n_batch}-tiles.zip"  # the same tiles as one upload
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
                for f in tiles[:n_batch]:
                    z.write(f, f"tiles/{f.name}")
            page.goto(url)
            wait_model_ready(page)
            budget(f"{n_batch} tiles as one .zip -> results table", upload(page, [archive], n_batch, detail=False),
                   "batch")
            page_files(url)
        except Exception:
            print(f"server log ({log}):\n" + log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            stop_server(proc)
            browser.close()
    scoring_alone(bundle, tiles[:n_batch])


def page_files(url: str, connections: int = 6) -> None:
    """The page's own files fetched as a browser does, on six kept-alive connections (the server's answer
    time; a response that waits for the client's delayed acknowledgement costs 40 ms each)."""
    import re
    import statistics
    import urllib.parse
    from concurrent.futures import ThreadPoolExecutor
    from http.client import HTTPConnection

    html = urllib.request.urlopen(url, timeout=30).read().decode()
    paths = ["/" + p.lstrip("./") for p in re.findall(r'(?:src|href)="(\./static/[^"]+)"', html)]
    host = urllib.parse.urlsplit(url)

    def fetch(share: list[str]) -> None:
        conn = HTTPConnection(host.hostname, host.port, timeout=30)
        for path in share:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
        conn.close()

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(fetch, [paths[i::connections] for i in range(connections)]))
        times.append(time.perf_counter() - t0)
    name = f"the page's {len(paths)} frontend files on {connections} kept-alive connections"
    FIGURES.setdefault((name, "reference"), []).append(statistics.median(times))
    print(f"for reference: {name}: {statistics.median(times):.2f} s (median of 3)", flush=True)


def scoring_alone(bundle: Path, files: list[Path]) -> None:
    """The machine's own pace, for reading the batch figures: the same tiles scored in this process as the app
    scores them (8 views, chunked), with no server or browser running; on the app's engine and, as a yardstick
    that earlier runs also printed, on the float32 model.onnx."""
    import statistics

    import numpy as np

    from app.runtime import scoring
    from model_training.data.decode import read_tile
    from model_training.inference.predictor import Predictor

    tiles = np.stack([read_tile(f) for f in files])
    for engine in ("auto", "onnx"):
        pred = Predictor.load(bundle, engine=engine)
        scoring.predict(pred, tiles[:8], tta=True)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            scoring.predict(pred, tiles, tta=True)
            times.append(time.perf_counter() - t0)
        name = f"scoring the {len(files)} tiles x 8 views alone ({pred.engine.name}, no server or browser running)"
        FIGURES.setdefault((name, "reference"), []).append(statistics.median(times))
        print(f"for reference: {name}: {statistics.median(times):.2f} s (median of 3)", flush=True)
        if engine == "auto" and pred.engine.name == "onnx":
            break  # the bundle has no int8 copy: the app's engine is the yardstick


def main() -> None:
    from model_training.bundle.files import default_bundle

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--data", type=Path, default=os.environ.get("PATHREVIEW_DATA"))
    ap.add_argument("--tiles", type=int, default=200, help="tiles in the batch figure (default 200)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="whole runs, each from a fresh server start; prints each figure's median and range")
    args = ap.parse_args()
    if args.data is None:
        ap.error("set PATHREVIEW_DATA or pass --data (real tiles are uploaded)")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is not installed (apt-get install chromium)")
    print(f"bundle {args.bundle}; {os.cpu_count()} CPUs", flush=True)
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"run {i + 1} of {args.repeat}", flush=True)
        run(args.bundle.resolve(), args.data.resolve(), args.tiles)
    if args.repeat > 1:
        summary()


if __name__ == "__main__":
    main()
