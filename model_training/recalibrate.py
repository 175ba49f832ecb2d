"""Re-fit a bundle's calibration and threshold on a labelled split, keeping its trained weights.

Use it to bring a bundle written by an older version up to the current card (Platt calibration), or to
recalibrate on a site's own labelled tiles. The new bundle keeps the training record and history and adds
the recalibration command to the card.

CLI: ``python -m model_training.recalibrate --bundle runs/NAME --data DIR --out assets/NAME``
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Card fields that describe how the model came to be; everything else is re-measured.
KEPT = ("data", "training", "members")


def main(argv: list[str] | None = None) -> int:
    from .quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

    ap = argparse.ArgumentParser(prog="python -m model_training.recalibrate", description=__doc__.split("\n")[0],
                                 epilog=DEBUG_EPILOG)
    ap.add_argument("--bundle", required=True, help="the bundle whose model is recalibrated")
    ap.add_argument("--data", required=True, help="dataset root holding the labelled split")
    ap.add_argument("--split", default="valid", help="split to calibrate on (default: valid)")
    ap.add_argument("--limit", type=int, default=None, help="use a stratified subset of N tiles")
    ap.add_argument("--out", required=True, help="output bundle directory (must differ from --bundle)")
    ap.add_argument("--target-sensitivity", type=float, default=0.95)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    src, out = Path(args.bundle), Path(args.out)
    if src.resolve() == out.resolve():
        raise SystemExit("--out must be a new directory: the source bundle stays as it is")

    from .bundle import HISTORY_FILE
    from .predictor import Predictor
    from .report import finalize_bundle
    from .train import load_split, record_subset_auc

    source = Predictor.load(src, warm_up=False)  # hash-checked, safe-mode loaded
    card, model = source.card, source.model
    val_src, val_arr = load_split(args.data, args.split, args.limit, 0, False)
    if val_arr is None or len(set(val_arr[1].tolist())) < 2:
        raise SystemExit(f"{args.data}/{args.split}: calibration needs tiles of both classes held in RAM")
    out.mkdir(parents=True, exist_ok=True)
    if (src / HISTORY_FILE).exists():
        shutil.copy2(src / HISTORY_FILE, out / HISTORY_FILE)
    meta = {"name": out.name, **{k: card[k] for k in KEPT if k in card},
            "recalibration": {"command": "python -m model_training.recalibrate " + " ".join(map(shlex.quote, argv)),
                              "source_sha256": card.get("sha256"), "split": f"{args.data} ({args.split}), "
                              f"{len(val_arr[1])} tiles"}}
    new = finalize_bundle(model, out, val_arr[0], val_arr[1], val_arr[2], meta, args.target_sensitivity)
    record_subset_auc(out, new, val_src)
    v = new["validation"]["tta"]
    print(json.dumps({"bundle": str(out), "auc_tta": v["auc"], "nll_tta": v["nll"], "threshold": new["threshold"]},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
