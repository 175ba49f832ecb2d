"""Model speed figures on this machine: training img/s, inference img/s, single-tile and TTA/Grad-CAM latency,
for each engine (Keras, which the commands use; ONNX Runtime on model.onnx; and its int8 copy, which the app uses).

    python benchmarks/bench_model.py [--bundle assets/pathcnn-v6] [--arch pathcnn] [--train-tiles 3200]

Needs PATHREVIEW_DATA for real tiles. Prints one line per figure, and each product budget with the measured
figure against it; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAKE_TRAIN_EPOCHS = 30  # the epochs `make train` gives the shipped network


def _timeit(fn, repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def _budget(name: str, value: float, target: float, unit: str, higher_is_better: bool) -> None:
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    print(f"budget {name}: {value:.1f} {unit} (target {sign} {target:g}) {'met' if ok else 'MISSED'}")


def scoring_figures(pred, tiles) -> tuple[float, float, float]:
    """Print the scoring figures of one engine; return (single-tile ms, detail-view ms, batch tiles/s)."""
    name = pred.engine.name
    batch_rate = len(tiles) / _timeit(lambda: pred.predict(tiles), 3)
    print(f"{name}: inference, batches of 256: {batch_rate:.0f} img/s")
    print(f"{name}: inference with 8-view TTA: {len(tiles) / _timeit(lambda: pred.predict(tiles, tta=True), 2):.0f} "
          "tiles/s")
    one = tiles[:1]
    single_ms = _timeit(lambda: pred.predict(one), 50) * 1e3
    print(f"{name}: single tile: {single_ms:.1f} ms")
    print(f"{name}: single tile with TTA: {_timeit(lambda: pred.predict(one, tta=True), 20) * 1e3:.1f} ms")
    print(f"{name}: Grad-CAM + Grad-CAM++ (one pass) per tile: "
          f"{_timeit(lambda: pred.explain_all(one[0]), 10) * 1e3:.1f} ms")

    def detail_view():  # what the app's detail view computes for one tile
        pred.predict(one, tta=True)
        pred.explain_all(one[0])

    detail_ms = _timeit(detail_view, 10) * 1e3
    print(f"{name}: tile + 8 views + Grad-CAM + Grad-CAM++: {detail_ms:.1f} ms")
    return single_ms, detail_ms, batch_rate


def fresh_load_seconds(bundle: Path, engine: str) -> float:
    """Seconds from a new Python process to a warmed-up Predictor: what a server start waits for."""
    code = ("import sys, time; t = time.perf_counter(); from model_training.inference.predictor import Predictor; "
            f"Predictor.load(sys.argv[1], engine={engine!r}); print(time.perf_counter() - t)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True, text=True, env=env,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from model_training.bundle.files import default_bundle
    from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

    ap = argparse.ArgumentParser(epilog=DEBUG_EPILOG)
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--arch", default="pathcnn")
    ap.add_argument("--train-tiles", type=int, default=3200)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args()
    quiet_cli(args.verbose)

    import keras

    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset
    from model_training.inference.predictor import Predictor
    from model_training.training import pipeline
    from model_training.training.architectures import build_model, count_flops
    from model_training.training.config import AugmentConfig

    data = os.environ.get("PATHREVIEW_DATA")
    if not data:
        sys.exit("set PATHREVIEW_DATA to the PCam subset")

    x, y, _ = stratified_subset(open_source(data, "train"), args.train_tiles, 0).load_all()
    model = build_model(args.arch)
    print(f"{args.arch}: {model.count_params():,} params, {count_flops(model) / 1e6:.1f} MFLOPs/img")
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="binary_crossentropy", jit_compile=True)
    ds = pipeline.from_arrays(x, y, 64, shuffle=True, augment=AugmentConfig())
    model.fit(ds.take(3), verbose=0)  # compile
    t = time.perf_counter()
    model.fit(ds, verbose=0)
    dt = time.perf_counter() - t
    train_rate = len(x) // 64 * 64 / dt
    print(f"training (batch 64, full augmentation): {train_rate:.0f} img/s "
          f"-> {31420 / train_rate / 60:.1f} min per 31,420-tile epoch")
    # make train: MAKE_TRAIN_EPOCHS epochs, plus about 2 minutes of decoding, calibration and figures
    make_train_min = MAKE_TRAIN_EPOCHS * 31420 / train_rate / 60 + 2

    tiles = x[:512]
    figures = {engine: scoring_figures(Predictor.load(args.bundle, engine=engine), tiles)
               for engine in ("keras", "onnx", "onnx-int8")}
    for engine in figures:
        print(f"{engine}: model ready in a fresh process (imports, hash checks, load, warm-up): "
              f"{fresh_load_seconds(args.bundle, engine):.2f} s")
    size_mb = sum(f.stat().st_size for f in Path(args.bundle).rglob("*") if f.is_file()) / 2**20
    for engine, (single_ms, detail_ms, batch_rate) in figures.items():
        _budget(f"single tile without TTA ({engine})", single_ms, 5, "ms", False)
        _budget(f"tile + 8 views + Grad-CAM + Grad-CAM++ ({engine})", detail_ms, 100, "ms", False)
        _budget(f"batch scoring ({engine})", batch_rate, 500, "tiles/s", True)
    _budget(f"make train ({MAKE_TRAIN_EPOCHS} epochs, estimated from this run)", make_train_min, 100, "min", False)
    _budget("bundle size", size_mb, 20, "MB", False)


if __name__ == "__main__":
    main()
