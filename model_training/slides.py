"""Score whole-slide images: tissue tiles at the model's resolution → CSV, QuPath GeoJSON, heat map, summary.

``python -m model_training.slides SLIDE... --out DIR [--stride 96|48] [--tta] [--mpp X] [--model BUNDLE]``

Each slide writes ``DIR/<slide>.tiles.csv``, ``.geojson``, ``.heatmap.png`` and ``.summary.json``. A slide
whose summary already records the same model and settings is skipped, so an interrupted run resumes where it
stopped. A slide that cannot be used gets one line saying why; the others are still scored.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .bundle import default_bundle
from .data import TILE, TILE_MPP
from .predictor import ENGINE_HELP, ENGINES
from .slide_grid import MIN_TISSUE, STRIDES
from .slide_outputs import write_all
from .slide_reader import SlideError, open_slide
from .slide_scoring import SlideResult, score_slide
from .tissue import TissueParams

def model_mpp(card: dict) -> float:
    """The resolution (µm/px) the model's tiles were cut at, from its card."""
    return float(card.get("mpp") or TILE_MPP)  # cards older than the `mpp` field: PCam's


def settings(pred, stride: int, tta: bool, mpp: float | None, params: TissueParams, min_tissue: float) -> dict:
    """What makes two runs on one slide the same run (resume skips a slide only when these match)."""
    return {"model_sha256": pred.sha256, "engine": pred.engine.name, "stride": stride, "tta": tta, "mpp_given": mpp,
            "tissue": {**params.as_dict(), "min_tissue": min_tissue}}


def already_done(summary_path: Path, wanted: dict) -> bool:
    try:
        done = json.loads(summary_path.read_text()).get("settings")
    except (OSError, ValueError):
        return False
    return done == wanted


def output_stem(path: Path) -> str:
    return path.name


def run_slide(pred, path: Path, out: Path, *, stride: int = TILE, tta: bool = False, mpp: float | None = None,
              params: TissueParams = TissueParams(), min_tissue: float = MIN_TISSUE, batch: int = 256,
              progress: bool = True) -> tuple[SlideResult, dict]:
    """Score one slide with the Predictor and write its outputs; returns the result and the output paths."""
    from tqdm import tqdm

    target = model_mpp(pred.card)
    with open_slide(path, mpp, target_mpp=target) as slide:
        bar = tqdm(total=0, unit="tile", desc=path.name, disable=not progress, file=sys.stderr, leave=False)

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        t0 = time.perf_counter()
        try:
            result = score_slide(slide, lambda t, a: pred.predict(t, tta=a, batch=batch * (8 if a else 1)),
                                 target, stride=stride, tta=tta, params=params, min_tissue=min_tissue,
                                 batch=batch, progress=tick)
        finally:
            bar.close()
    summary = {**result.summary, "model": pred.card.get("name"), "model_sha256": pred.sha256,
               "settings": settings(pred, stride, tta, mpp, params, min_tissue)}
    summary["timings"]["total_s"] = round(time.perf_counter() - t0, 3)
    ov = result.overview
    paths = write_all(out, output_stem(path), result.frame, slide.name, ov.thumb, ov.scale, ov.mask, summary,
                      cell=ov.grid.step0)
    result.summary = summary
    return result, paths


def main(argv: list[str] | None = None) -> int:
    from .quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

    ap = argparse.ArgumentParser(prog="python -m model_training.slides", description=__doc__, epilog=DEBUG_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("slides", nargs="+", type=Path, help="slide files (SVS, TIFF, NDPI, MIRAX, … or PNG/JPEG)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the outputs")
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
    ap.add_argument("--engine", choices=ENGINES, default="keras", help=ENGINE_HELP)
    ap.add_argument("--force", action="store_true", help="score again even when outputs exist")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    from .bundle import BundleError
    from .predictor import Predictor

    try:
        pred = Predictor.load(args.model or default_bundle(), engine=args.engine)
    except (BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = TissueParams(min_saturation=args.min_saturation, otsu_scale=args.otsu_scale,
                          max_saturation=args.max_saturation)
    failed = 0
    for path in args.slides:
        wanted = settings(pred, args.stride, args.tta, args.mpp, params, args.min_tissue)
        if not args.force and already_done(args.out / f"{output_stem(path)}.summary.json", wanted):
            print(f"{path.name}: already scored with this model and settings, skipped")
            continue
        try:
            result, _ = run_slide(pred, path, args.out, stride=args.stride, tta=args.tta, mpp=args.mpp,
                                  params=params, min_tissue=args.min_tissue, batch=args.batch_size)
        except SlideError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        except OSError as exc:
            print(f"error: {path.name}: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        s = result.summary
        print(f"{path.name}: {s['tiles_scored']} tiles on {s['tissue_area_mm2']:.1f} mm² of tissue, "
              f"{s['tiles_flagged']} flagged, max P {s['max_p']:.3f}, "
              f"{s['timings']['tiles_per_s']} tiles/s → {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
