"""Model speed figures on this machine: training img/s, inference img/s, single-tile and TTA/Grad-CAM latency.

    python benchmarks/bench_model.py [--bundle assets/pathcnn-v3] [--arch pathcnn] [--train-tiles 3200]

Needs PATHREVIEW_DATA for real tiles. Prints one line per figure; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _timeit(fn, repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main() -> None:
    import keras

    from model_training import pipeline
    from model_training.architectures import build_model, count_flops
    from model_training.augment import AugmentConfig
    from model_training.bundle import default_bundle
    from model_training.data import open_source
    from model_training.predictor import Predictor
    from model_training.train import stratified_subset

    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--arch", default="pathcnn")
    ap.add_argument("--train-tiles", type=int, default=3200)
    args = ap.parse_args()
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
    print(f"training (batch 64, full augmentation): {len(x) // 64 * 64 / dt:.0f} img/s "
          f"-> {31420 / (len(x) // 64 * 64 / dt) / 60:.1f} min per 31,420-tile epoch")

    pred = Predictor.load(args.bundle)
    tiles = x[:512]
    print(f"inference, batches of 256: {len(tiles) / _timeit(lambda: pred.predict(tiles), 3):.0f} img/s")
    print(f"inference with 8-view TTA: {len(tiles) / _timeit(lambda: pred.predict(tiles, tta=True), 2):.0f} tiles/s")
    one = tiles[:1]
    print(f"single tile, compiled call: {_timeit(lambda: pred.predict(one), 50) * 1e3:.1f} ms")
    print(f"single tile, model.predict: {_timeit(lambda: pred.model.predict(one.astype('float32'), verbose=0), 10) * 1e3:.1f} ms")
    print(f"single tile with TTA: {_timeit(lambda: pred.predict(one, tta=True), 20) * 1e3:.1f} ms")
    for method in ("gradcam", "gradcam++"):
        print(f"{method} per tile: {_timeit(lambda: pred.explain(one[0], method), 10) * 1e3:.1f} ms")
    t = time.perf_counter()
    Predictor.load(args.bundle)
    print(f"bundle load (hash check + compile + warm-up): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
