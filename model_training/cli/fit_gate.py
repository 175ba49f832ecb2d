"""Fit a bundle's quality gate (``quality_gate.npz``) and record its limits and figures in the card."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

PROG = "python -m model_training.cli.fit_gate"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG)
    ap.add_argument("bundle", type=Path, help="model bundle directory")
    ap.add_argument("--data", type=Path, required=True,
                    help="PCam-style dataset root: training tiles fit the densities, validation tiles the limits")
    ap.add_argument("--other-organ", type=Path, nargs="*", default=[], metavar="SLIDE",
                    help="whole slides of tissue that is not lymph node, to measure how much of it is flagged")
    ap.add_argument("--engine", default="auto", help="what computes the features (default: what scores: auto)")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    # after quiet_cli: these modules import TensorFlow, whose start-up lines it mutes
    from model_training.bundle.files import BundleError
    from model_training.slides.reader import SlideError
    from model_training.training.gate import fit_gate_for_bundle

    try:
        entry = fit_gate_for_bundle(args.bundle, args.data, args.other_organ, engine=args.engine)
    except (BundleError, SlideError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    f = entry["figures"]
    held = f["held_out"]
    line = (f"{args.bundle / entry['file']}: held-out tiles ok {held['ok']:.1%} (AUC {held['auc_all']:.4f}"
            f", on ok tiles {held['auc_ok']:.4f}); flagged: blurred {f['blur_2.5px']['flagged']:.1%}, "
            f"pen-marked {f['pen']['flagged']:.1%}")
    if "other_organ" in f:
        line += f", other organ {f['other_organ']['flagged']:.1%} of {f['other_organ']['tiles']} tiles"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
