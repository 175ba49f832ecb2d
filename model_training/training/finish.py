"""Turn a trained model into a bundle: calibrate and threshold on validation, write card and figures."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from model_training.bundle.contract import TILE_MPP
from model_training.bundle.files import MODEL_FILE, VAL_PRED_FILE, library_versions, sha256, write_card
from model_training.data.spreadsheet import safe_frame
from model_training.evaluation.colour_shift import colour_shifted
from model_training.evaluation.figures import write_figures
from model_training.evaluation.metrics import (crossfit_nll, fit_platt, fit_temperature, nll, rates_ci, summary,
                                               threshold_with_margin)
from model_training.export.int8 import CALIBRATION_TILES, quantize_if_supported
from model_training.export.onnx_graph import export_if_supported
from model_training.inference.predictor import N_VIEWS, Predictor, dihedral_views
from model_training.training.architectures import count_flops
from model_training.training.gate import fit_bundle_gate

log = logging.getLogger(__name__)

# The physical scale the model learned: slides must be read at this resolution (see ARCHITECTURE.md).
TILE_MPP_SOURCE = ("PCam tiles are cut from Camelyon16 slides at pyramid level 2, a 4x downsample of the ~0.243 "
                   "um/px level-0 scans (40x), i.e. about 0.97 um/px (10x) (Veeling et al. 2018)")
INTENDED_USE = ("Research and teaching: ranking 96x96 H&E lymph-node patches (PCam-style, 10x) for review "
                "by a pathologist. Not a medical device; not for diagnosis.")
LIMITATIONS = [
    "Trained on PCam/Camelyon16 lymph-node sections from two Dutch centres; other organs, stains, "
    "scanners or magnifications are out of distribution.",
    "The label concerns the centre 32x32 pixels only; tumour in the outer ring does not make a tile positive.",
    "Validation figures are optimistic for new slides: the validation tiles come from the same two centres as "
    "the training tiles. Before relying on the threshold, a site should re-fit calibration and threshold on its "
    "own labelled tiles (python -m model_training.cli.recalibrate; see the Model card page).",
    "Blank, blurred, folded or pen-marked tissue gives unreliable scores.",
]


def calibrate(y: np.ndarray, z_single: np.ndarray, z_views: np.ndarray,
              target_sensitivity: float) -> tuple[dict, dict[str, np.ndarray], dict]:
    """Platt calibration (temperature + bias) and threshold for single-view and 8-view TTA scoring, both
    fitted on validation.

    Returns the card's calibration entries, the calibrated validation probabilities of each mode and the
    validation NLL of each calibration step (see ``calibration_check``).
    """
    cal, probs, checks = {}, {}, {}
    for mode, z in (("single", z_single), ("tta", z_views.mean(axis=1))):
        t, b = fit_platt(y, z)
        probs[mode] = expit(z / t + b)
        cal[mode] = {"method": "platt: sigmoid(logit / temperature + bias)", "temperature": t, "bias": b,
                     "threshold": threshold_with_margin(y, probs[mode], target_sensitivity),
                     "threshold_rule": f"highest threshold at which the lower end of the bootstrap 95% CI of "
                                       f"validation sensitivity is >= {target_sensitivity}"}
        checks[mode] = calibration_check(y, z, probs[mode])
    return cal, probs, checks


def calibration_check(y: np.ndarray, z: np.ndarray, p_platt: np.ndarray) -> dict:
    """Validation NLL of the raw logits, of temperature scaling alone and of Platt scaling (``p_platt``),
    in-sample and out-of-fold (5-fold), so the card shows what each calibration step buys."""
    return {"nll_uncalibrated": nll(y, expit(z)),
            "nll_temperature": nll(y, expit(z / fit_temperature(y, z))),
            "nll_platt": nll(y, p_platt),
            "nll_temperature_5fold": crossfit_nll(y, z, "temperature"),
            "nll_platt_5fold": crossfit_nll(y, z, "platt")}


def view_logits(pred: Predictor, x: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Raw logits of the 8 dihedral views of each tile, shape (N, 8), ``chunk`` tiles at a time."""
    return np.concatenate([pred.logits(dihedral_views(x[i:i + chunk]).reshape(-1, *x.shape[1:]))
                           .reshape(-1, N_VIEWS) for i in range(0, len(x), chunk)])


def colour_shift_check(pred: Predictor, val_x: np.ndarray, val_y: np.ndarray, cal: dict, n_boot: int) -> dict:
    """8-view TTA metrics on the fixed colour-shifted copy of validation, with the validation calibration and
    threshold: how much of the validation figure survives a stain shift beyond the training augmentation."""
    z = view_logits(pred, colour_shifted(val_x)).mean(axis=1)
    p = expit(z / cal["temperature"] + cal["bias"])
    return {"description": "validation tiles recoloured beyond the training stain augmentation "
                           "(model_training/evaluation/colour_shift.py, fixed seed)", **summary(val_y, p, cal["threshold"], n_boot)}


def gate_from_validation(pred: Predictor, out: Path, val_x: np.ndarray, val_y: np.ndarray,
                         figure_tiles: int = 512) -> dict:
    """The quality gate from the tiles at hand (a site's own, when recalibrating): densities on every other
    tile, limits and figures on the rest; ``fit_gate`` re-fits the densities on training tiles."""
    even = np.arange(len(val_x)) % 2 == 0
    held_x, held_y = val_x[~even], val_y[~even]
    return fit_bundle_gate(pred, out, val_x[even], held_x, held_x[:figure_tiles], held_y[:figure_tiles],
                           fitted_on=f"densities: {int(even.sum())} validation tiles (even positions); limits and "
                                     f"figures: the other {int((~even).sum())} (figures on at most {figure_tiles}; "
                                     "not held out)")


def finalize_bundle(model, out: Path, val_x: np.ndarray, val_y: np.ndarray, val_ids: list[str],
                    meta: dict, target_sensitivity: float = 0.95, n_boot: int = 1000,
                    int8_calibration: tuple[np.ndarray, str] | None = None) -> dict:
    """Save model + card + predictions + figures into ``out``; return the card.

    ``int8_calibration`` (tiles, where they came from) sets the int8 copy's activation ranges; callers that hold
    training tiles pass ``export.int8.calibration_tiles`` of them, others leave it to a spread of ``val_x``."""
    import keras

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Save an inference-only copy: no optimizer state, so the file stays small and loads anywhere.
    clean = keras.Model.from_config(model.get_config())  # clone_model would carry the optimizer along
    clean.set_weights(model.get_weights())
    clean.save(out / MODEL_FILE)
    card = {"name": meta.get("name", out.name), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "architecture": model.name, "params": int(model.count_params()),
            "flops_per_image": count_flops(model), "sha256": sha256(out / MODEL_FILE),
            "input": {"dtype": "float32", "shape": [None, 96, 96, 3], "range": [0, 255],
                      "rescaling": "inside the model"},
            "output": "P(tumour in the centre 32x32), sigmoid; pre-sigmoid layer 'logit'; features 'last_conv'",
            "tile_px": 96, "mpp": TILE_MPP, "mpp_source": TILE_MPP_SOURCE}
    pred = Predictor(clean, {"sha256": card["sha256"]}, out)
    views = view_logits(pred, val_x)
    cal, probs, checks = calibrate(val_y, views[:, 0], views, target_sensitivity)
    card["calibration"] = cal
    card["temperature"] = cal["tta"]["temperature"]
    card["bias"] = cal["tta"]["bias"]
    card["threshold"] = cal["tta"]["threshold"]
    card["threshold_rule"] = cal["tta"]["threshold_rule"]
    card["tta_views"] = N_VIEWS

    p_single, p_tta = probs["single"], probs["tta"]
    p_views = expit(views / cal["tta"]["temperature"] + cal["tta"]["bias"])
    card["validation"] = {
        "tta": {**summary(val_y, p_tta, cal["tta"]["threshold"], n_boot),
                **rates_ci(val_y, p_tta, cal["tta"]["threshold"])},
        "single": {**summary(val_y, p_single, cal["single"]["threshold"], n_boot),
                   **rates_ci(val_y, p_single, cal["single"]["threshold"])},
        "colour_shifted_tta": colour_shift_check(pred, val_x, val_y, cal["tta"], n_boot),
        "calibration_nll": checks,
    }
    card.update({k: v for k, v in meta.items() if k != "name"})
    card["library_versions"] = library_versions()
    card["intended_use"] = INTENDED_USE
    card["limitations"] = LIMITATIONS
    onnx_info = export_if_supported(out, pred, val_x[:256])  # the model in memory: no reload from disk
    if onnx_info is not None:
        card["onnx"] = onnx_info
        # The int8 copy the app scores with; its activation ranges need unlabelled tiles only, so without
        # training tiles a spread of the validation tiles (a site's own, when recalibrating) serves.
        if int8_calibration is None:
            spread = val_x[np.linspace(0, len(val_x) - 1, min(len(val_x), CALIBRATION_TILES)).astype(int)]
            int8_calibration = (spread, f"{len(spread)} validation tiles (ranges only, labels unused)")
        int8_info = quantize_if_supported(out, card, int8_calibration[0], val_x, val_y, int8_calibration[1])
        if int8_info is not None:
            card["onnx_int8"] = int8_info
    card["quality_gate"] = gate_from_validation(pred, out, val_x, val_y)
    write_card(out, card)

    predictions = pd.DataFrame({"id": val_ids, "label": val_y.astype(int), "p": p_tta, "p_single": p_single,
                                "logit": views.mean(axis=1), "spread": p_views.std(axis=1)})
    safe_frame(predictions).to_csv(out / VAL_PRED_FILE, index=False)
    write_figures(out, val_y, p_tta, card["threshold"])
    return card
