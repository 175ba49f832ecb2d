"""Average several trained models into one bundle that keeps the single-model contract.

Each member ends in ``last_conv -> global average pool -> Dense logit``. Pooling and the Dense head are
linear, so the mean of the members' logits equals one Dense layer over the channel-wise concatenation of
their ``last_conv`` features, with the members' kernels and biases scaled by 1/M. The ensemble is therefore
one flat functional model with a single ``last_conv`` (all members' feature maps), ``logit`` and
``p_tumour``: the Predictor, Grad-CAM and the app use it unchanged, and its Grad-CAM is the ensemble's own.

Command: ``python -m model_training.cli.ensemble --members runs/a runs/b --data DIR --out assets/NAME``
"""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import layers

from model_training.bundle.contract import LAST_CONV, LOGIT, OUTPUT, TILE
from model_training.bundle.files import HISTORY_FILE
from model_training.data.spreadsheet import safe_frame
from model_training.data.subsets import load_split
from model_training.inference.predictor import Predictor
from model_training.training.finish import finalize_bundle
from model_training.training.loop import record_subset_auc

log = logging.getLogger(__name__)


def _member_graph(model, inp, suffix: str):
    """Re-create ``model``'s layers (renamed with ``suffix``) on the shared input; return its last_conv tensor."""
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
    if len(models) < 2:
        raise ValueError("an ensemble needs at least two models")
    shapes = {tuple(m.get_layer(LAST_CONV).output.shape[1:3]) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"members' {LAST_CONV} feature maps differ in size ({sorted(shapes)}); "
                         "ensemble models whose last feature maps have the same size")
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


def _merged_history(bundles: list[Path]) -> pd.DataFrame | None:
    parts = [pd.read_csv(b / HISTORY_FILE).assign(member=b.name) for b in bundles if (b / HISTORY_FILE).exists()]
    return pd.concat(parts, ignore_index=True) if parts else None


def make_ensemble(members: list[Path], data: str, out: Path, *, val_split: str = "valid",
                  val_limit: int | None = None, target_sensitivity: float = 0.95, command: str = "") -> dict:
    """Average the member bundles into a new bundle in ``out``, calibrated on ``data``'s validation split;
    returns its card (which names the members and the ``command`` that made it)."""
    loaded = [Predictor.load(b, warm_up=False) for b in members]  # hash-checked, safe-mode loaded
    cards = [m.card for m in loaded]
    ensemble = build_ensemble([m.model for m in loaded])
    val_src, val_arr = load_split(data, val_split, val_limit, 0, False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history = _merged_history(members)
    if history is not None:
        safe_frame(history).to_csv(out / HISTORY_FILE, index=False)
    summaries = [_member_summary(b, c) for b, c in zip(members, cards)]
    seconds = sum((m["training"] or {}).get("seconds", 0) for m in summaries)
    meta = {"name": out.name, "data": cards[0].get("data"),
            "training": {"command": command, "method": f"mean of {len(loaded)} members' logits",
                         "seconds": round(seconds, 1),
                         "member_commands": [(m["training"] or {}).get("command") for m in summaries]},
            "members": summaries}
    card = finalize_bundle(ensemble, out, val_arr[0], val_arr[1], val_arr[2], meta, target_sensitivity)
    record_subset_auc(out, card, val_src)
    return card
