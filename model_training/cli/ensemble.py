"""Average several trained models into one bundle that keeps the single-model contract."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_training.cli.quiet import DEBUG_EPILOG, VERBOSE_HELP, start_command

PROG = "python -m model_training.cli.ensemble"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=DEBUG_EPILOG)
    ap.add_argument("--members", nargs="+", required=True, help="two or more trained model bundles")
    ap.add_argument("--data", required=True, help="dataset root with the validation split")
    ap.add_argument("--val-split", default="valid")
    ap.add_argument("--val-limit", type=int, default=None)
    ap.add_argument("--out", required=True, help="output bundle directory")
    ap.add_argument("--target-sensitivity", type=float, default=0.95)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args, command = start_command(ap, argv)
    from model_training.training.ensemble import make_ensemble  # TensorFlow loads here, after quiet_cli

    card = make_ensemble([Path(m) for m in args.members], args.data, Path(args.out), val_split=args.val_split,
                         val_limit=args.val_limit, target_sensitivity=args.target_sensitivity,
                         command=command)
    print(json.dumps({"bundle": args.out, "auc_tta": card["validation"]["tta"]["auc"],
                      "members_auc_tta": [m["auc_tta"] for m in card["members"]], "threshold": card["threshold"]},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
