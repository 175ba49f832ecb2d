"""Two checkouts of the app compared on the start and one-tile figures, in pairs (a script, not a test).

    PATHREVIEW_DATA=/path/to/pcam-subset .venv/bin/python benchmarks/bench_app_pair.py OLD_CHECKOUT [NEW] [--pairs 12]

A shared 2-core machine drifts by tens of percent within minutes, so two ``bench_app.py --repeat`` runs taken
one after the other can differ more than two versions of the app do. Here each pair starts both apps back to
back (alternating which goes first), each from a fresh server and an empty browser cache, and measures as
``bench_app.py`` does: server start to the first page with the model ready, then one tile to its result and
detail view. It prints each figure's median per checkout and the median of the paired differences. Both
checkouts run with this checkout's virtual environment and shipped model; NEW defaults to this checkout.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_app import upload, wait_model_ready  # noqa: E402
from test_e2e import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402


def one_run(browser, root: Path, bundle: Path, data: Path, tile: Path) -> tuple[float, float]:
    """(server start -> first page with the model ready, one tile -> result and detail view) in seconds."""
    tmp = Path(tempfile.mkdtemp(prefix="pathreview-pair-"))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # an empty cache
    page = context.new_page()
    page.set_default_timeout(300_000)
    t0 = time.perf_counter()
    proc, url = start_server(bundle, f"sqlite:///{tmp / 'reviews.db'}", data, tmp / "streamlit.log", root=root)
    try:
        wait_healthy(url, proc, poll=0.02)
        page.goto(url)
        wait_model_ready(page)
        start = time.perf_counter() - t0
        return start, upload(page, [tile], 1, detail=True)
    finally:
        stop_server(proc)
        context.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    from model_training.bundle.files import default_bundle

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="a checkout of the app (e.g. a git worktree of an older commit)")
    ap.add_argument("new", type=Path, nargs="?", default=ROOT, help="another checkout (default: this one)")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--data", type=Path, default=os.environ.get("PATHREVIEW_DATA"))
    args = ap.parse_args()
    if args.data is None:
        ap.error("set PATHREVIEW_DATA or pass --data (a real tile is uploaded)")
    trees = [args.old.resolve(), args.new.resolve()]
    for tree in trees:
        if not (tree / "app" / "main.py").is_file():
            ap.error(f"{tree} is not a checkout of this app (no app/main.py)")
    bundle = default_bundle().resolve()
    tiles = sorted((args.data / "valid").glob("*.jpg"))[:args.pairs]
    figures = {tree: ([], []) for tree in trees}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i, tile in enumerate(tiles):
                for tree in trees if i % 2 == 0 else trees[::-1]:
                    start, one = one_run(browser, tree, bundle, args.data.resolve(), tile)
                    figures[tree][0].append(start)
                    figures[tree][1].append(one)
                    print(f"pair {i + 1}: {tree}: start {start:.2f} s, one tile {one:.2f} s", flush=True)
        finally:
            browser.close()
    for k, name in enumerate(("server start -> first page, model ready", "one tile -> result row + detail view")):
        old, new = figures[trees[0]][k], figures[trees[1]][k]
        diff = [b - a for a, b in zip(old, new)]
        print(f"{name}: old median {statistics.median(old):.2f} s, new median {statistics.median(new):.2f} s; "
              f"new - old: median {statistics.median(diff):+.2f} s, new faster in {sum(d < 0 for d in diff)} of "
              f"{len(diff)} pairs", flush=True)


if __name__ == "__main__":
    main()
