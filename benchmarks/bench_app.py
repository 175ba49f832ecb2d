"""Benchmark the PathReview app (a script, not a test).

    PATHREVIEW_DATA=/path/to/pcam-subset .venv/bin/python benchmarks/bench_app.py [--bundle DIR]

Prints: server start -> first page with the model ready (browser), upload -> scored table + detail view
latency in the browser for several batch sizes, and in-process single-tile predict and TTA + Grad-CAM
per-tile latencies. Uses Debian's Chromium via Playwright; only 127.0.0.1 is contacted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_e2e import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {1000 * statistics.median(xs):.1f} ms, p90 {1000 * xs[int(0.9 * (len(xs) - 1))]:.1f} ms " \
           f"(n={len(xs)})"


def bench_model(bundle: Path, tifs: list[Path]) -> None:
    import numpy as np

    from model_training.data import read_tile
    from model_training.predictor import Predictor

    t0 = time.perf_counter()
    pred = Predictor.load(bundle)
    print(f"Predictor.load (verify sha256, load, compile, warm up): {time.perf_counter() - t0:.2f} s")
    tiles = [read_tile(p) for p in tifs[:20]]
    x1 = tiles[0][None]
    print("single-tile predict, no TTA:        ", ms(timed(lambda: pred.predict(x1), 50)))
    print("single-tile predict, 8-view TTA:    ", ms(timed(lambda: pred.predict(x1, tta=True), 30)))
    it = iter(tiles * 3)

    def detail():  # what the detail view computes for one new tile
        t = next(it)
        pred.predict(t[None], tta=True)
        pred.explain(t, "gradcam")
        pred.explain(t, "gradcam++")
    detail()  # builds the explainers
    print("TTA + Grad-CAM + Grad-CAM++ per tile:", ms(timed(detail, 20)))
    batch = np.stack(tiles[:20] * 13)[:256]
    t = min(timed(lambda: pred.predict(batch), 3))
    print(f"throughput, 256 tiles no TTA:        {256 / t:.0f} tiles/s")
    t = min(timed(lambda: pred.predict(batch[:64], tta=True), 3))
    print(f"throughput, 64 tiles 8-view TTA:     {64 / t:.0f} tiles/s")


def bench_browser(bundle: Path, data: Path, tifs: list[Path], sizes: list[int]) -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pathreview-bench-"))
    t0 = time.perf_counter()
    proc, url = start_server(bundle, tmp / "audit.csv", data, tmp / "streamlit.log")
    try:
        t_health = wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)
            page.goto(url)
            page.get_by_text("sha256").first.wait_for()  # the sidebar names the model once it is loaded
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').wait_for(state="attached")
            t_ready = time.perf_counter() - t0
            print(f"server start -> /_stcore/health ok:   {t_health:.2f} s")
            print(f"server start -> first page, model ready: {t_ready:.2f} s")
            for n in sizes:
                page.goto(url)
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').wait_for(state="attached")
                files = [str(f) for f in (tifs * (n // len(tifs) + 1))[:n]]
                t1 = time.perf_counter()
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files)
                page.get_by_text(f"{n} tile(s) scored").wait_for()
                page.get_by_text("Grad-CAM++", exact=True).wait_for()
                print(f"upload {n:>3} tiles -> table + detail view: {time.perf_counter() - t1:.2f} s")
            browser.close()
    finally:
        stop_server(proc)


def main() -> None:
    from model_training.bundle import default_bundle
    from model_training.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

    ap = argparse.ArgumentParser(description=__doc__, epilog=DEBUG_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--data", type=Path, default=os.environ.get("PATHREVIEW_DATA"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 32, 200])
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args()
    if args.data is None:
        ap.error("set PATHREVIEW_DATA or pass --data (real tiles are uploaded)")
    quiet_cli(args.verbose)
    tifs = sorted((args.data / "samples" / "kaggle-tif" / "train").glob("*.tif"))
    print(f"bundle {args.bundle}; {os.cpu_count()} CPUs")
    bench_model(args.bundle, tifs)
    if not args.no_browser:
        bench_browser(args.bundle, args.data, tifs, args.sizes)


if __name__ == "__main__":
    main()
