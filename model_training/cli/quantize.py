"""An int8 copy of a bundle's model.onnx for scoring on CPUs: ``model.int8.onnx``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_training.bundle.files import INT8_FILE, BundleError
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.export import int8
from model_training.export.int8 import CALIBRATION_TILES, QuantizeError, quantize_bundle

PROG = "python -m model_training.cli.quantize"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=int8.__doc__, epilog=DEBUG_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path, help="model bundle directory with a model.onnx")
    ap.add_argument("--data", type=Path, required=True,
                    help="PCam-style dataset root: its training tiles set the ranges, its validation tiles check")
    ap.add_argument("--calibration-tiles", type=int, default=CALIBRATION_TILES,
                    help=f"training tiles that set the activation ranges (default {CALIBRATION_TILES})")
    ap.add_argument("--check-tiles", type=int, default=None,
                    help="validation tiles to check the copy on (default: all)")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    quiet_cli(args.verbose, tensorflow=False)
    if not args.verbose:  # the quantizer logs every tensor it calibrates
        logging.getLogger("root").setLevel(logging.WARNING)
    try:
        info = quantize_bundle(args.bundle, args.data, args.calibration_tiles, args.check_tiles)
    except (BundleError, QuantizeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    c = info["check"]
    print(f"{args.bundle / INT8_FILE}: sha256 {info['sha256'][:12]}…; on {c['tiles']} validation tiles with TTA "
          f"the same decision as model.onnx for {c['same_decision']:.2%} ({c['decisions_changed']} changed), "
          f"largest probability difference {c['max_abs_p_diff']:.3f}, AUC {c['int8']['auc']:.4f} "
          f"(model.onnx {c['float']['auc']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
