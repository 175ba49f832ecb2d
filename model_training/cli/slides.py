"""Score whole-slide images: tissue tiles at the model's resolution → CSV, QuPath GeoJSON, heat map, summary.

``python -m model_training.cli.slides SLIDE... --out DIR [--stride 96|48] [--tta] [--mpp X] [--model BUNDLE]``

Each slide writes ``DIR/<slide>.tiles.csv``, ``.geojson``, ``.heatmap.png`` and ``.summary.json``. A slide
whose summary already records the same model and settings is skipped, so an interrupted run resumes where it
stopped. A slide that cannot be used gets one line saying why; the others are still scored."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.bundle.contract import TILE
from model_training.bundle.files import BundleError, default_bundle
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.inference.predictor import ENGINE_HELP, ENGINES, Predictor
from model_training.slides.grid import MIN_TISSUE, STRIDES
from model_training.slides.run import SlideSettings, score_slides
from model_training.slides.tissue import TissueParams


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.slides", description=__doc__, epilog=DEBUG_EPILOG,
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
    try:
        settings = SlideSettings(stride=args.stride, tta=args.tta, mpp=args.mpp, min_tissue=args.min_tissue,
                                 tissue=TissueParams(min_saturation=args.min_saturation, otsu_scale=args.otsu_scale,
                                                     max_saturation=args.max_saturation), batch=args.batch_size)
        pred = Predictor.load(args.model or default_bundle(), engine=args.engine)
    except (BundleError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for done in score_slides(pred, args.slides, args.out, settings, force=args.force):
        if done.skipped:
            print(f"{done.path.name}: already scored with this model and settings, skipped")
        elif done.error:
            print(f"error: {done.error}", file=sys.stderr)
            failed += 1
        else:
            s = done.result.summary
            top = f"max P {s['max_p']:.3f}" if s["max_p"] is not None else "no tile assessed"
            print(f"{done.path.name}: {s['tiles_scored']} tiles on {s['tissue_area_mm2']:.1f} mm² of tissue, "
                  f"{s['tiles_flagged']} flagged, {s['quality']['not_assessed']} not assessed, {top}, "
                  f"{s['timings']['tiles_per_s']} tiles/s → {args.out}")
            if s["quality"]["warning"]:
                print(f"  warning: {s['quality']['warning']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
