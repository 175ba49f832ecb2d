"""Fit the slide-level answer on labelled case slides built from validation patches, and record it in the card.

``python -m model_training.cli.slide_level --data PCAM_ROOT --work DIR [--cases 500] [--second-look 16]
[--sensitivity 0.9] [--specificity 0.7] [--write-card]``

Builds ``--cases`` slides from each half of the validation split (half normal, half with one metastasis of
1–8 adjacent tumour patches), scores them with the bundle (with a second look, 8-view TTA, at each slide's
top tiles), fits on both halves' slides and measures by 2-fold cross-validation (fitted on each half,
measured on the other); prints the ``slide_level`` block, and writes it into the bundle's model card with
``--write-card``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_training.bundle.files import BundleError, default_bundle, read_card, write_card
from model_training.cli.quiet import quiet_cli
from model_training.inference.predictor import ENGINES
from model_training.slides.answer_fit import SECOND_LOOK, SENSITIVITY_TARGET, SPECIFICITY_FLOOR, fit_and_measure
from model_training.slides.batch import BatchJob
from model_training.slides.run import SlideSettings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.slide_level", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="labelled dataset root (uses its valid split)")
    ap.add_argument("--work", type=Path, required=True, help="folder for the case slides and their scores")
    ap.add_argument("--model", type=Path, default=None, help="bundle (default: PATHREVIEW_MODEL or assets/)")
    ap.add_argument("--engine", choices=ENGINES, default="auto")
    ap.add_argument("--cases", type=int, default=500, help="case slides per half (default 500)")
    ap.add_argument("--second-look", type=int, default=SECOND_LOOK,
                    help=f"top tiles per slide re-scored with 8-view TTA (default {SECOND_LOOK}; 0: none)")
    ap.add_argument("--sensitivity", type=float, default=SENSITIVITY_TARGET,
                    help=f"sensitivity target: the decision threshold is the highest at which the fit set's "
                         f"sensitivity reaches it with 95%% confidence (default {SENSITIVITY_TARGET})")
    ap.add_argument("--specificity", type=float, default=SPECIFICITY_FLOOR,
                    help=f"specificity floor: the threshold is raised where needed until the fit set's specificity "
                         f"reaches it with 95%% confidence (default {SPECIFICITY_FLOOR}; 0: no floor)")
    ap.add_argument("--tta", action="store_true", help="score the tiles with 8-view TTA")
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--write-card", action="store_true", help="record the result in the bundle's model card")
    args = ap.parse_args(argv)
    if not 0 < args.sensitivity <= 1:
        ap.error(f"--sensitivity {args.sensitivity}: a share of the fit set's metastasis slides, in (0, 1]")
    if not 0 <= args.specificity < 1:
        ap.error(f"--specificity {args.specificity}: a share of the fit set's normal slides, in [0, 1)")
    quiet_cli(False)
    bundle = args.model or default_bundle()
    try:
        card = read_card(bundle)
    except (BundleError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    job = BatchJob(str(bundle), args.engine, str(args.work), SlideSettings(tta=args.tta))
    block = fit_and_measure(job, args.data, args.work, args.cases, args.second_look, args.seed, args.sensitivity,
                            args.specificity)
    print(json.dumps(block, indent=2))
    if args.write_card:
        write_card(bundle, {**card, "slide_level": block})
        print(f"recorded in {bundle}/model_card.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
