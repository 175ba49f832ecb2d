"""Whole-slide scoring speed on this machine: tiles per second including reading, and peak memory.

    python benchmarks/bench_slides.py [--bundle assets/pathcnn-v6] [--grid 48x40]

Builds a fixture slide from real validation patches (PATHREVIEW_DATA) as a deflate-compressed pyramidal TIFF at
twice the model's resolution, so reading decodes and resamples as it would for a 20x scan, then scores it
without and with TTA. Prints the figures and the budget; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_TILES_PER_S = 600


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class PeakRSS:
    """Samples this process's resident memory every 20 ms while the block runs."""

    def __enter__(self):
        self.start, self.peak, self._stop = rss_mb(), rss_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def main() -> None:
    from model_training.bundle.files import default_bundle
    from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
    from model_training.inference.predictor import ENGINE_HELP, ENGINES

    ap = argparse.ArgumentParser(epilog=DEBUG_EPILOG)
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--grid", default="48x40", help="COLSxROWS patches on the fixture slide")
    ap.add_argument("--engine", choices=ENGINES, default="keras", help=ENGINE_HELP)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args()
    quiet_cli(args.verbose)
    data = os.environ.get("PATHREVIEW_DATA")
    if not data:
        sys.exit("PATHREVIEW_DATA is not set: the fixture slide is built from its validation patches")

    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset
    from model_training.inference.predictor import Predictor
    from model_training.slides.labelled import build
    from model_training.slides.reader import open_slide
    from model_training.slides.run import model_mpp
    from model_training.slides.scoring import overview, score_slide

    cols, rows = (int(v) for v in args.grid.split("x"))
    pred = Predictor.load(args.bundle, engine=args.engine)
    target = model_mpp(pred.card)
    tiles, labels, ids = stratified_subset(open_source(data, "valid"), cols * rows, seed=0).load_all()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fixture.tiff"
        build(tiles, labels, ids, cols, path, upsample=2, mpp=target)
        del tiles
        print(f"engine {pred.engine.name}; fixture slide: {cols * rows} patches at {target / 2:.3f} µm/px, "
              f"{path.stat().st_size / 2 ** 20:.1f} MB deflate-compressed pyramidal TIFF")
        for tta in (False, True):
            with open_slide(path, target_mpp=target) as slide:
                ov = overview(slide, target)
                with PeakRSS() as mem:
                    t0 = time.perf_counter()
                    result = score_slide(slide, lambda t, a: pred.predict(t, tta=a, batch=256 * (8 if a else 1)),
                                         target, tta=tta, ov=ov)
                    seconds = time.perf_counter() - t0
            n = result.summary["tiles_scored"]
            print(f"{'with' if tta else 'without'} TTA: {n} tiles in {seconds:.2f} s = {n / seconds:.0f} tiles/s "
                  f"(reading + scoring; tissue mask {ov.seconds:.2f} s); peak RSS {mem.peak:.0f} MB "
                  f"(+{mem.peak - mem.start:.0f} MB while scoring)")
            if not tta:
                rate = n / seconds
                ok = "met" if rate >= TARGET_TILES_PER_S else "MISSED"
                print(f"budget slide scoring without TTA: {rate:.0f} tiles/s (target >= {TARGET_TILES_PER_S}) {ok}")


if __name__ == "__main__":
    main()
