"""Export a bundle's model.keras to ``model.onnx``, checked against it, for ONNX Runtime."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.bundle.files import MODEL_FILE, ONNX_FILE, BundleError
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.export import onnx_graph
from model_training.export.onnx_graph import ExportError, check_tiles, export_bundle

PROG = "python -m model_training.cli.onnx_export"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=onnx_graph.__doc__, epilog=DEBUG_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path, help="model bundle directory (its model.keras is exported)")
    ap.add_argument("--data", type=Path, help="PCam-style dataset root: its validation tiles join the check")
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    try:
        info = export_bundle(args.bundle, check_tiles(args.data))  # Predictor.load verifies the bundle
    except (BundleError, ExportError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.bundle / ONNX_FILE}: sha256 {info['sha256'][:12]}…, largest logit difference from "
          f"{MODEL_FILE} {info['max_abs_logit_diff']:.2g} on {info['check_tiles']} tiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
