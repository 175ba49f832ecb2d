"""Build a labelled test slide: real labelled patches laid edge to edge in a pyramidal tiled TIFF.

``python -m model_training.cli.labelled_slide --data DIR --out slide.tiff [--grid 16x12] [--upsample 2]``

Every tile of the model's grid on such a slide is one known patch, so slide scoring can be checked against
the Predictor's scores of the same patches. ``--upsample 2`` writes the same patches at twice the resolution
(as a 20x scan of a 10x model's tiles), which exercises level choice and resampling. The TIFF carries its
resolution in its resolution tags (pixels per centimetre), which OpenSlide reports as ``openslide.mpp-x``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.slides.labelled import build_from_dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.labelled_slide", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="labelled dataset root (uses its valid split)")
    ap.add_argument("--out", type=Path, required=True, help="TIFF to write; the labels go beside it as .csv")
    ap.add_argument("--grid", default="16x12", help="COLSxROWS patches (default 16x12)")
    ap.add_argument("--upsample", type=int, default=1, help="write at this many times the patch resolution")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cols, rows = (int(v) for v in args.grid.lower().split("x"))
    frame = build_from_dataset(args.data, args.out, cols, rows, args.upsample, args.seed)
    print(f"wrote {args.out} ({cols}×{rows} patches, {frame.label.sum()} tumour) and its labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
