"""Re-fit a bundle's calibration and threshold on a labelled split, keeping its trained weights.

Use it to bring a bundle written by an older version up to the current card (Platt calibration), or to
recalibrate on a site's own labelled tiles. The new bundle keeps the training record and history and adds
the recalibration command to the card.

Command: ``python -m model_training.cli.recalibrate --bundle runs/NAME --data DIR --out assets/NAME``
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from model_training.bundle.files import HISTORY_FILE
from model_training.data.sources import TileSource
from model_training.data.subsets import load_split
from model_training.inference.predictor import Predictor
from model_training.training.finish import finalize_bundle
from model_training.training.loop import record_subset_auc

log = logging.getLogger(__name__)

# Card fields that describe how the model came to be; everything else is re-measured.
KEPT = ("data", "training", "members")


class RecalibrationError(ValueError):
    """Recalibration cannot start; the message says why."""


def recalibrate(bundle: Path, data: str, out: Path, *, split: str = "valid", limit: int | None = None,
                target_sensitivity: float = 0.95, command: str = "") -> dict:
    """Write a copy of ``bundle`` to ``out`` with calibration and threshold re-fitted on ``data``/``split``;
    returns the new card."""
    src, out = Path(bundle), Path(out)
    if src.resolve() == out.resolve():
        raise RecalibrationError("--out must be a new directory: the source bundle stays as it is")
    source = Predictor.load(src, warm_up=False)  # hash-checked, safe-mode loaded
    card, model = source.card, source.model
    val_src, val_arr = load_split(data, split, limit, 0, False)
    if val_arr is None or len(set(val_arr[1].tolist())) < 2:
        raise RecalibrationError(f"{data}/{split}: calibration needs tiles of both classes held in RAM")
    record = {"recalibration": {"command": command, "source_sha256": card.get("sha256"),
                                "split": f"{data} ({split}), {len(val_arr[1])} tiles"}}
    return write_derived(model, card, src, out, val_src, val_arr, record, target_sensitivity)


def write_derived(model, card: dict, src: Path, out: Path, val_src: TileSource, val_arr: tuple, record: dict,
                  target_sensitivity: float = 0.95, int8_calibration: tuple[np.ndarray, str] | None = None) -> dict:
    """Write ``model``, made from the bundle ``src`` (whose card is ``card``), as a new bundle at ``out``: the
    training record and history kept, ``record`` (what was done to it) added, calibration, threshold, exports,
    gate and figures fitted again on ``val_arr`` (the int8 ranges on ``int8_calibration`` where given); returns
    the new card."""
    out.mkdir(parents=True, exist_ok=True)
    if (src / HISTORY_FILE).exists():
        shutil.copy2(src / HISTORY_FILE, out / HISTORY_FILE)
    meta = {"name": out.name, **{k: card[k] for k in KEPT if k in card}, **record}
    new = finalize_bundle(model, out, val_arr[0], val_arr[1], val_arr[2], meta, target_sensitivity,
                          int8_calibration=int8_calibration)
    record_subset_auc(out, new, val_src)
    return new
