"""Re-fit a bundle's calibration and threshold on a labelled split, keeping its trained weights."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, start_command

PROG = "python -m model_training.cli.recalibrate"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG)
    ap.add_argument("--bundle", required=True, help="the bundle whose model is recalibrated")
    ap.add_argument("--data", required=True, help="dataset root holding the labelled split")
    ap.add_argument("--split", default="valid", help="split to calibrate on (default: valid)")
    ap.add_argument("--limit", type=int, default=None, help="use a stratified subset of N tiles")
    ap.add_argument("--out", required=True, help="output bundle directory (must differ from --bundle)")
    ap.add_argument("--target-sensitivity", type=float, default=0.95)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args, command = start_command(ap, argv)
    # TensorFlow loads with this module, so it comes after quiet_cli has muted its start-up lines.
    from model_training.training.recalibrate import RecalibrationError, recalibrate

    try:
        card = recalibrate(Path(args.bundle), args.data, Path(args.out), split=args.split, limit=args.limit,
                           target_sensitivity=args.target_sensitivity,
                           command=command)
    except RecalibrationError as exc:
        raise SystemExit(str(exc)) from None
    v = card["validation"]["tta"]
    print(json.dumps({"bundle": args.out, "auc_tta": v["auc"], "nll_tta": v["nll"], "threshold": card["threshold"]},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
