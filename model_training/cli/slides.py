"""Score whole-slide images: tissue tiles at the model's resolution → CSV, QuPath GeoJSON, heat map, summary.

``python -m model_training.cli.slides SLIDE... | --manifest FILE --out DIR [--workers N | --scheduler ADDRESS]
[--stride 96|48] [--tta] [--mpp X] [--model BUNDLE] [--engine auto] [--db URL]``

Each slide writes ``DIR/<slide>.tiles.csv``, ``.geojson``, ``.heatmap.png`` and ``.summary.json`` (with the
slide-level ``slide_score`` and ``decision``); the run writes ``DIR/cases.csv``, one row per slide. A slide
whose summary already records the same model and settings is skipped, so an interrupted run resumes where it
stopped. A slide that cannot be used gets its reason; the others are still scored. ``--workers N`` scores one
slide per task on a Dask LocalCluster of N processes, ``--scheduler`` on an existing Dask cluster. With
``--db`` (or ``PATHREVIEW_DB_URL``) the scored slides are then added to that review store's Cases worklist."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.bundle.contract import TILE
from model_training.bundle.files import BundleError, default_bundle
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.inference.predictor import ENGINE_HELP, ENGINES, scores_with_keras
from model_training.slides.batch import BatchInterrupted, BatchJob, run_batch, worker_predictor
from model_training.slides.batch_report import say_batch, say_interrupted
from model_training.slides.grid import MIN_TISSUE, STRIDES
from model_training.slides.manifest import read_manifest
from model_training.slides.review_store import Handoff, add_to_store, store_url
from model_training.slides.run import SlideSettings
from model_training.slides.tissue import TissueParams

STOPPED = 130  # the shell's status for a command stopped by Ctrl-C
NO_STORE = Handoff(True, "no review store given")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.slides", description=__doc__, epilog=DEBUG_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("slides", nargs="*", type=Path, help="slide files (SVS, TIFF, NDPI, MIRAX, … or PNG/JPEG)")
    ap.add_argument("--manifest", type=Path, help="text file of slide paths, one a line (or a CSV with a `path` column)")
    ap.add_argument("--workers", type=int, default=1, help="Dask worker processes on this machine (default 1: "
                                                             "no Dask)")
    ap.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    ap.add_argument("--db", help="review store (SQLAlchemy URL) to add the scored slides to, for the app's Cases "
                                 "page (default $PATHREVIEW_DB_URL; neither: none)")
    ap.add_argument("--model", type=Path, default=None, help="bundle (default: PATHREVIEW_MODEL or assets/)")
    ap.add_argument("--stride", type=int, choices=STRIDES, default=TILE, help="in model pixels (default 96)")
    ap.add_argument("--tta", action="store_true", help="average the 8 dihedral views (8x slower)")
    ap.add_argument("--mpp", type=float, default=None,
                    help="µm per level-0 pixel, for slides without resolution metadata (overrides it)")
    ap.add_argument("--min-tissue", type=float, default=MIN_TISSUE, help="tissue fraction for a tile to be scored")
    ap.add_argument("--min-saturation", type=float, default=TissueParams.min_saturation)
    ap.add_argument("--otsu-scale", type=float, default=TissueParams.otsu_scale)
    ap.add_argument("--max-saturation", type=float, default=TissueParams.max_saturation,
                    help="cap on the tissue threshold (HSV saturation)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--engine", choices=ENGINES, default="auto", help=ENGINE_HELP + "; default auto")
    ap.add_argument("--force", action="store_true", help="score again even when outputs exist")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    bundle = args.model or default_bundle()
    # TensorFlow (over 3 s to import) only where Keras scores: the ONNX engines and Dask workers never use it
    quiet_cli(args.verbose, tensorflow=scores_with_keras(bundle, args.engine))
    try:
        settings = SlideSettings(stride=args.stride, tta=args.tta, mpp=args.mpp, min_tissue=args.min_tissue,
                                 tissue=TissueParams(min_saturation=args.min_saturation, otsu_scale=args.otsu_scale,
                                                     max_saturation=args.max_saturation), batch=args.batch_size)
        slides = list(args.slides) + (read_manifest(args.manifest) if args.manifest else [])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not slides:
        ap.error("name slide files or a --manifest")
    if args.workers < 1:
        ap.error(f"--workers must be 1 or more (got {args.workers})")
    job = BatchJob(str(bundle), args.engine, str(args.out), settings, args.force)
    try:
        worker_predictor(job)  # a bundle that cannot load stops here, before any cluster starts
    except (BundleError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        rows = run_batch(slides, job, workers=args.workers, scheduler=args.scheduler)
    except ConnectionError as exc:  # --scheduler names no scheduler that answers: nothing was scored
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BatchInterrupted as stop:
        say_interrupted(stop.rows, args.out)
        _to_worklist(args.out, args.db)  # the slides that finished are read before the rest are scored
        return STOPPED
    failed = say_batch(rows, args.out, args.scheduler)
    handoff = _to_worklist(args.out, args.db)
    if handoff.stopped:
        return STOPPED
    return 1 if not handoff.ok or failed else 0


def _to_worklist(out: Path, db: str | None) -> Handoff:
    """Add the batch's scored slides to the review store, when one is set, and say so (nothing to say without)."""
    url = store_url(db)
    if not url:
        return NO_STORE
    handoff = add_to_store(out, url)
    if handoff.stopped:
        print(f"Cases worklist: {handoff.message}", file=sys.stderr)
    elif not handoff.ok:
        print(f"error: the slides were not added to the Cases worklist: {handoff.message}", file=sys.stderr)
    else:
        print(f"Cases worklist: {handoff.message}")
    return handoff


if __name__ == "__main__":
    sys.exit(main())
