"""Write a demo slide made only of the CC0 example tiles, for demonstrations without data.

``python -m model_training.cli.demo_slide --out slides/demo.tiff [--seed 4]``

Put it in the app's slide folder (``PATHREVIEW_SLIDES``) to show the Slide page, or score it with
``python -m model_training.slides``. Its tiles repeat: it shows what the tools do and measures nothing."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.slides.demo import build_demo_slide


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.demo_slide", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="TIFF to write; its tile labels go beside it as .csv")
    ap.add_argument("--seed", type=int, default=4, help="the layout's seed (default 4: the README's picture)")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame = build_demo_slide(args.out, seed=args.seed)
    print(f"wrote {args.out} ({len(frame)} tissue tiles, a metastasis of {frame.label.sum()}) and its labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
