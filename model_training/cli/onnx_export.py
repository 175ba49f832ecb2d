"""A second, light runtime for a bundle's model: ``model.onnx``, scored with ONNX Runtime.

Importing TensorFlow and Keras takes 4-8 s on a 2-core machine; ONNX Runtime imports in about 0.1 s. The app
scores through ``model.onnx`` when the bundle carries one, so its first page is ready before TensorFlow would
be. ``model.keras`` stays the model of record: the ONNX file is derived from it, checked against it on export
(logits and Grad-CAM inputs), and listed in the card with its own sha256.

    python -m model_training.cli.onnx_export assets/pathcnn-v4 [--data PCAM_ROOT]

The graph is built layer by layer from the Keras model (tf2onnx pins a protobuf that TensorFlow 2.21 cannot
use). Only the layers this project's architectures use are converted; anything else is refused by name, and
that bundle is simply scored by Keras. Besides ``logit`` the graph outputs ``last_conv`` (NHWC) and
``logit_grad``, the gradient of the logit with respect to ``last_conv``: for the project's head
(global average pooling, dropout, one Dense unit) that gradient is the Dense kernel over the map's area at every
position, so Grad-CAM needs no gradient machinery at run time."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.bundle.files import MODEL_FILE, ONNX_FILE, BundleError
from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli
from model_training.export.onnx_graph import ExportError, check_tiles, export_bundle

PROG = "python -m model_training.cli.onnx_export"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG,
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
