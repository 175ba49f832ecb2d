"""Batch slide scoring speed: one process end to end against the model alone, and a Dask LocalCluster.

    python benchmarks/bench_batch.py [--bundle assets/pathcnn-v6] [--engine auto] [--slides 6] [--grid 48x40]

``--grid 96x80 --slides 2`` measures slides four times as large (7,400 tissue tiles; the validation split's
patches are used again, turned, where the grid needs more of them).

Builds ``--slides`` fixture slides from real validation patches (PATHREVIEW_DATA; deflate-compressed pyramidal
TIFFs at twice the model's resolution, as a 20x scan), then measures, on the same engine:
1. the model alone: tiles/s of ``Predictor.logits`` on decoded tiles, the median of three passes;
2. one slide end to end in one process (open, tissue mask, read, score: the target's own definition), tiles/s
   and its ratio to 1 (target >= 0.6), the median of three slides after a first one (reported apart), and the
   median of each slide's ratio to a model pass run just before it (the same machine state); then the same
   with its outputs written too;
3. all slides with ``run_batch`` in one process and with ``--workers 2`` (a cold cluster each time), in turn,
   three rounds: the medians' tiles/s, slides/hour and ratio (target >= 0.9), and each round's ratio; then on a
   cluster already up; then the same from the shell, each command a fresh process;
and works out the cost per 1,000 slides of 100,000 tiles on a 16-core node and on ten of them, from the
measured per-core end-to-end rate (assuming it scales with cores, which the --workers ratio checks).
Prints the figures; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 3  # of one process and a cold --workers 2 each, taken in turn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from model_training.bundle.files import default_bundle
    from model_training.cli.quiet import quiet_cli
    from model_training.inference.predictor import ENGINES, scores_with_keras

    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, default=default_bundle())
    ap.add_argument("--engine", choices=ENGINES, default="auto")
    ap.add_argument("--slides", type=int, default=6)
    ap.add_argument("--grid", default="48x40", help="COLSxROWS patches per fixture slide")
    args = ap.parse_args()
    quiet_cli(False, tensorflow=scores_with_keras(args.bundle, args.engine))
    data = os.environ.get("PATHREVIEW_DATA")
    if not data:
        sys.exit("PATHREVIEW_DATA is not set: the fixture slides are built from its validation patches")

    import numpy as np
    from dask.distributed import Client

    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset
    from model_training.slides.batch import BatchJob, run_batch, warm_up, worker_predictor
    from model_training.slides.dask_run import local_cluster, start_method
    from model_training.slides.labelled import build
    from model_training.slides.run import SlideSettings, run_slide

    cols, rows = (int(v) for v in args.grid.split("x"))
    cores = os.cpu_count() or 1
    job = BatchJob(str(args.bundle), args.engine, "")
    pred = worker_predictor(job)
    source = open_source(data, "valid")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k in range(args.slides):
            tiles, labels, ids = stratified_subset(source, cols * rows, seed=k).load_all()
            if len(tiles) < cols * rows:  # a grid larger than the split: its patches again, each copy turned
                copies = -(-cols * rows // len(tiles))
                tiles = np.concatenate([np.rot90(tiles, c, axes=(1, 2)) for c in range(copies)])
                labels, ids = np.tile(labels, copies), list(ids) * copies
            paths.append(Path(tmp) / f"fixture-{k}.tiff")
            build(tiles, labels, ids, cols, paths[-1], upsample=2, mpp=0.972)
        batch = np.concatenate([tiles] * max(1, 2048 // len(tiles)))[:2048]
        pred.logits(batch[:256])

        def model_pass() -> float:
            """The model alone on ``batch``: tiles/s."""
            t0 = time.perf_counter()
            for i in range(0, len(batch), 256):
                pred.logits(batch[i:i + 256])
            return len(batch) / (time.perf_counter() - t0)

        passes = [model_pass() for _ in range(3)]  # the median of three, as the slide's is of three slides
        alone = float(np.median(passes))
        print(f"engine {pred.engine.name} on {cores} cores; {args.slides} fixture slides of {cols}x{rows} patches "
              f"at 0.486 µm/px")
        print(f"model alone: {alone:.0f} tiles/s (median of {min(passes):.0f}-{max(passes):.0f})")
        # the first slide a process scores also pays for its first-use costs (imports, page cache); the ratio
        # is taken, like the model's own figure, once warm: the median of three slides after it
        # Each slide also gets a model pass just before it: on a machine whose speed drifts between runs (the
        # model alone moved by a quarter from one run to the next here), the two are compared in the same state
        runs, paired = [], []
        for k in range(4):
            before = model_pass()
            t0 = time.perf_counter()
            result, _ = run_slide(pred, paths[k % len(paths)], Path(tmp) / f"one-{k}", SlideSettings(),
                                  progress=False)
            runs.append((time.perf_counter() - t0, result.summary))
            t = result.summary["timings"]
            paired.append(result.summary["tiles_scored"] / t["total_s"] / before)
        print(f"first slide end to end: {runs[0][1]['tiles_scored'] / runs[0][0]:.0f} tiles/s")
        e2e_s, summary = sorted(runs[1:], key=lambda r: r[0])[1]
        n = summary["tiles_scored"]
        t = summary["timings"]
        # the target's end to end: tissue mask, reading and scoring (opening the slide and its slide-level
        # answer too), before any output is written; the outputs' cost is given beside it
        print(f"one slide end to end (median of 3): {n} tiles in {t['total_s']:.2f} s = {n / t['total_s']:.0f} "
              f"tiles/s (tissue mask {t['overview_s']:.2f} s, reading + scoring {t['scoring_s']:.2f} s); ratio to "
              f"the model alone {n / t['total_s'] / alone:.2f} (target >= 0.6)")
        print(f"  each slide against the model alone measured just before it: ratio {np.median(paired[1:]):.2f} "
              f"(median; the three slides: {', '.join(f'{r:.2f}' for r in paired[1:])})")
        print(f"  and writing its outputs (CSV, GeoJSON, heat map, summary; {e2e_s - t['total_s']:.2f} s): "
              f"{n / e2e_s:.0f} tiles/s, ratio {n / e2e_s / alone:.2f} (a batch writes a slide while it scores "
              "the next)")
        # one process and a cold --workers 2 in turn, three rounds: a batch of a few seconds swings with the
        # machine by as much as the cluster costs, and taking turns spreads any drift over both
        runs_of: dict[int, list[float]] = {1: [], 2: []}
        for k in range(ROUNDS):
            for workers in (1, 2):
                out = Path(tmp) / f"batch-{workers}-{k}"
                t0 = time.perf_counter()
                done = run_batch(paths, BatchJob(str(args.bundle), args.engine, str(out)), workers=workers,
                                 progress=False)
                runs_of[workers].append(time.perf_counter() - t0)
        tiles = sum(int(r["tiles_scored"] or 0) for r in done)
        rates, took = {}, {}
        for workers, seconds_each in runs_of.items():
            seconds = float(np.median(seconds_each))
            rates[workers], took[workers] = tiles / seconds, seconds
            print(f"--workers {workers}: {len(done)} slides, {tiles} tiles in {seconds:.1f} s (median of "
                  f"{', '.join(f'{t:.1f}' for t in seconds_each)}) = {tiles / seconds:.0f} tiles/s, "
                  f"{3600 * len(done) / seconds:.0f} slides/hour"
                  f"{' (with starting the cluster and loading the model in each worker)' if workers > 1 else ''}")
        each = [a / b for a, b in zip(runs_of[1], runs_of[2])]
        # the same on a cluster already up with the model loaded in its workers, as on a long batch
        with local_cluster(2, start_method(args.bundle, args.engine)) as cluster, Client(cluster) as client:
            warm = BatchJob(str(args.bundle), args.engine, str(Path(tmp) / "batch-warm"), threads=max(1, cores // 2))
            client.run(warm_up, warm)
            t0 = time.perf_counter()
            done = run_batch(paths, warm, scheduler=cluster.scheduler_address, progress=False)
            seconds = time.perf_counter() - t0
        tiles = sum(int(r["tiles_scored"] or 0) for r in done)
        rates["warm"], took["warm"] = tiles / seconds, seconds
        print(f"--workers 2, cluster up and models loaded: {tiles / seconds:.0f} tiles/s, "
              f"{3600 * len(done) / seconds:.0f} slides/hour")
        print(f"--workers 2 / one process: {rates[2] / rates[1]:.2f} from a cold start (the rounds: "
              f"{', '.join(f'{r:.2f}' for r in each)}), {rates['warm'] / rates[1]:.2f} warm (target >= 0.9)")
        # paid once per batch, whatever its size: against a day's slides rather than these few it fades
        print(f"the cold cluster's fixed cost (starting it, the workers' imports and model loads, closing it): "
              f"{took[2] - took['warm']:.1f} s")
        # the commands as a user runs them: each a fresh process (imports, model load, the cluster if any)
        for workers in (1, 2):
            cmd = [sys.executable, "-m", "model_training.cli.slides", *map(str, paths), "--out",
                   str(Path(tmp) / f"command-{workers}"), "--model", str(args.bundle), "--engine", args.engine,
                   "--workers", str(workers)]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).resolve().parent.parent)
            took[f"command-{workers}"] = time.perf_counter() - t0
        print(f"the command, from the shell: {took['command-1']:.1f} s in one process, {took['command-2']:.1f} s "
              f"with --workers 2: ratio {took['command-1'] / took['command-2']:.2f}")
        per_core = rates[1] / cores
        for nodes in (1, 10):
            hours = 1000 * 100_000 / (per_core * 16 * nodes) / 3600
            print(f"1,000 slides of 100,000 tiles on {nodes} x 16-core node(s): {hours:.1f} h "
                  f"({16 * nodes * hours:.0f} core-hours) at {per_core:.0f} tiles/s per core end to end")


if __name__ == "__main__":
    main()
