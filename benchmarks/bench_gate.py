"""What the quality gate costs: scoring throughput with and without it, for tiles and for a whole slide.

    python benchmarks/bench_gate.py [--bundle assets/pathcnn-v6] [--engine onnx-int8]

Needs PATHREVIEW_DATA for real tiles (the slide is built from validation tiles in a temporary folder). Prints one
line per figure and the budget (the gate adds at most 15% to scoring time); nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_training.bundle.files import DEFAULT_BUNDLE  # noqa: E402
from model_training.data.sources import open_source  # noqa: E402
from model_training.data.subsets import stratified_subset  # noqa: E402
from model_training.inference.predictor import Predictor  # noqa: E402
from model_training.slides.labelled import build  # noqa: E402
from model_training.slides.reader import open_slide  # noqa: E402
from model_training.slides.run import model_mpp  # noqa: E402
from model_training.slides.scoring import overview, score_slide  # noqa: E402


def best_of(fn, repeat: int = 5) -> float:
    """Fastest of ``repeat`` timed runs after one warm-up (the machine is shared: the minimum is the cost)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def with_and_without(pred: Predictor, fn) -> tuple[float, float]:
    """Seconds of ``fn`` with the bundle's gate and with the gate switched off."""
    gate = pred.gate
    try:
        on = best_of(fn)
        pred.gate = None
        off = best_of(fn)
    finally:
        pred.gate = gate
    return on, off


def report(what: str, n: int, on: float, off: float) -> float:
    extra = on / off - 1
    print(f"{what}: {n / off:.0f} tiles/s without the gate, {n / on:.0f} with it (+{extra:.1%} time)")
    return extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--engine", default="onnx-int8")
    args = ap.parse_args()
    data = os.environ.get("PATHREVIEW_DATA")
    if not data:
        sys.exit("set PATHREVIEW_DATA to a PCam-style dataset root (../shared/data/pcam-subset)")
    pred = Predictor.load(args.bundle, engine=args.engine)
    if pred.gate is None:
        sys.exit(f"{args.bundle} has no quality gate; fit one with python -m model_training.cli.fit_gate")
    tiles, labels, ids = stratified_subset(open_source(data, "valid"), 1024, seed=0).load_all()
    extras = [report(f"{args.engine}: tiles, batches of 256", len(tiles),
                     *with_and_without(pred, lambda: pred.predict(tiles))),
              report(f"{args.engine}: tiles, 8-view TTA", len(tiles),
                     *with_and_without(pred, lambda: pred.predict(tiles, tta=True)))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-gate.tiff"
        build(tiles, labels, ids, 32, path)
        target = model_mpp(pred.card)
        with open_slide(path, target_mpp=target) as slide:
            ov = overview(slide, target)

            def whole_slide():
                score_slide(slide, lambda t, a: pred.predict(t, tta=a), target, ov=ov)

            extras.append(report(f"{args.engine}: a {ov.grid.n}-tile slide, reading and scoring", ov.grid.n,
                                 *with_and_without(pred, whole_slide)))
    worst = max(extras)
    print(f"budget quality gate overhead: {worst:.1%} of scoring time at most (target <= 15%) "
          f"{'met' if worst <= 0.15 else 'MISSED'}")


if __name__ == "__main__":
    main()
