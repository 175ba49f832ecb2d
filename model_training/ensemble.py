"""Average several trained models into one bundle that keeps the single-model contract.

Each member ends in ``last_conv -> global average pool -> Dense logit``. Pooling and the Dense head are
linear, so the mean of the members' logits equals one Dense layer over the channel-wise concatenation of
their ``last_conv`` features, with the members' kernels and biases scaled by 1/M. The ensemble is therefore
one flat functional model with a single ``last_conv`` (all members' feature maps), ``logit`` and
``p_tumour``: the Predictor, Grad-CAM and the app use it unchanged, and its Grad-CAM is the ensemble's own.

CLI: ``python -m model_training.ensemble --members runs/a runs/b --data DIR --out assets/NAME``
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np

from .bundle import HISTORY_FILE

log = logging.getLogger(__name__)


def _member_graph(model, inp, suffix: str):
    """Re-create ``model``'s layers (renamed with ``suffix``) on the shared input; return its last_conv tensor."""
    import keras

    from .architectures import LAST_CONV

    def rename(layer):
        cfg = layer.get_config()
        cfg["name"] = f"{layer.name}{suffix}"
        return layer.__class__.from_config(cfg)

    clone = keras.models.clone_model(model, input_tensors=inp, clone_function=rename)
    for layer in model.layers:
        if layer.weights:
            clone.get_layer(f"{layer.name}{suffix}").set_weights(layer.get_weights())
    return clone.get_layer(f"{LAST_CONV}{suffix}").output


def build_ensemble(models: list, name: str = "pathcnn_ensemble"):
    """One functional model whose logit is the mean of the members' logits (see the module docstring)."""
    import keras
    from keras import layers

    from .architectures import LAST_CONV, LOGIT, OUTPUT, TILE

    if len(models) < 2:
        raise ValueError("an ensemble needs at least two models")
    shapes = {tuple(m.get_layer(LAST_CONV).output.shape[1:3]) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"members' {LAST_CONV} feature maps differ in size ({sorted(shapes)}); "
                         "ensemble models of the same architecture")
    for m in models:
        head = m.get_layer(LOGIT)
        if not isinstance(head, layers.Dense) or head.input.shape[-1] != m.get_layer(LAST_CONV).output.shape[-1]:
            raise ValueError(f"{m.name}: expected last_conv -> global average pool -> Dense '{LOGIT}'")
    inp = keras.Input((TILE, TILE, 3), dtype="float32", name="tile")
    feats = [_member_graph(m, inp, f"_m{i + 1}") for i, m in enumerate(models)]
    x = layers.Concatenate(name=LAST_CONV)(feats)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    logit = layers.Dense(1, name=LOGIT)(x)
    out = layers.Activation("sigmoid", name=OUTPUT, dtype="float32")(logit)
    ensemble = keras.Model(inp, out, name=name)
    kernels, biases = zip(*(m.get_layer(LOGIT).get_weights() for m in models))
    ensemble.get_layer(LOGIT).set_weights([np.concatenate(kernels) / len(models), np.mean(biases, axis=0)])
    return ensemble


def _member_summary(bundle: Path, card: dict) -> dict:
    v = card.get("validation", {})
    return {"bundle": str(bundle), "name": card.get("name"), "sha256": card.get("sha256"),
            "params": card.get("params"), "training": card.get("training"),
            "auc_tta": v.get("tta", {}).get("auc"), "auc_single": v.get("single", {}).get("auc")}


def _merged_history(bundles: list[Path]):
    import pandas as pd

    parts = [pd.read_csv(b / HISTORY_FILE).assign(member=b.name) for b in bundles if (b / HISTORY_FILE).exists()]
    return pd.concat(parts, ignore_index=True) if parts else None


def main(argv: list[str] | None = None) -> int:
    from .quiet import DEBUG_EPILOG, VERBOSE_HELP, quiet_cli

    ap = argparse.ArgumentParser(prog="python -m model_training.ensemble", description=__doc__.split("\n")[0],
                                 epilog=DEBUG_EPILOG)
    ap.add_argument("--members", nargs="+", required=True, help="two or more trained model bundles")
    ap.add_argument("--data", required=True, help="dataset root with the validation split")
    ap.add_argument("--val-split", default="valid")
    ap.add_argument("--val-limit", type=int, default=None)
    ap.add_argument("--out", required=True, help="output bundle directory")
    ap.add_argument("--target-sensitivity", type=float, default=0.95)
    ap.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from .predictor import Predictor
    from .report import finalize_bundle
    from .train import load_split, record_subset_auc

    bundles = [Path(m) for m in args.members]
    loaded = [Predictor.load(b, warm_up=False) for b in bundles]  # hash-checked, safe-mode loaded
    cards = [m.card for m in loaded]
    ensemble = build_ensemble([m.model for m in loaded])
    val_src, val_arr = load_split(args.data, args.val_split, args.val_limit, 0, False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history = _merged_history(bundles)
    if history is not None:
        history.to_csv(out / HISTORY_FILE, index=False)
    members = [_member_summary(b, c) for b, c in zip(bundles, cards)]
    seconds = sum((m["training"] or {}).get("seconds", 0) for m in members)
    meta = {"name": out.name, "data": cards[0].get("data"),
            "training": {"command": "python -m model_training.ensemble " + " ".join(shlex.quote(a) for a in argv),
                         "method": f"mean of {len(loaded)} members' logits", "seconds": round(seconds, 1),
                         "member_commands": [(m["training"] or {}).get("command") for m in members]},
            "members": members}
    card = finalize_bundle(ensemble, out, val_arr[0], val_arr[1], val_arr[2], meta, args.target_sensitivity)
    record_subset_auc(out, card, val_src)
    print(json.dumps({"bundle": str(out), "auc_tta": card["validation"]["tta"]["auc"],
                      "members_auc_tta": [m["auc_tta"] for m in members], "threshold": card["threshold"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
