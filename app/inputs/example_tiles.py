"""The example tiles shipped in assets/examples: something to score on a machine with no data of its own."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_training.data.decode import IMAGE_EXTS
from model_training.evaluation.examples import EXAMPLES_DIR, LABELS_FILE

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

NAME = "example tiles"
NOTE = ("The example tiles are PCam validation tiles (CC0 1.0, Veeling et al. 2018) with known labels, shipped "
        "in `assets/examples`. They were chosen to show every outcome, errors and close calls included, so "
        "they say what the model does, not how often it is right.")
TRUTH = {1: "tumour", 0: "normal"}


def folder() -> Path:
    """The example folder; it opens as a labelled dataset (images + labels.csv)."""
    return EXAMPLES_DIR


def available() -> bool:
    """Whether the example folder is there with its labels (a slimmed install may leave it out)."""
    return (EXAMPLES_DIR / LABELS_FILE).is_file()


def labels() -> dict[str, int]:
    """File name → label (1 tumour, 0 normal), from labels.csv."""
    with open(EXAMPLES_DIR / LABELS_FILE, newline="", encoding="utf-8") as fh:
        rows = {r["id"]: int(r["label"]) for r in csv.DictReader(fh)}
    return {p.name: rows[p.stem] for p in _tiles() if p.stem in rows}


def _tiles() -> list[Path]:
    return sorted(p for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def files() -> list[tuple[str, bytes]]:
    """The labelled example tiles as ``(file name, bytes)``, exactly what an upload of them would hold."""
    known = labels()
    return [(p.name, p.read_bytes()) for p in _tiles() if p.name in known]


def with_truth(table: pd.DataFrame) -> pd.DataFrame:
    """The Analyze results table plus each tile's known label and outcome, right after ``decision``."""
    known = labels()
    label = np.array([known.get(name, -1) for name in table["file"]])
    # from the decision, not P(tumour): the table's P is rounded and could cross the threshold
    positive = (table["decision"] == "tumour").to_numpy()
    out = np.where(positive, np.where(label == 1, "TP", "FP"), np.where(label == 1, "FN", "TN"))
    out = np.where(table["decision"].to_numpy() == "not assessed", "not assessed", out)
    at = table.columns.get_loc("decision") + 1
    table = table.copy()
    table.insert(at, "true label", [TRUTH.get(int(v), "unknown") for v in label])
    table.insert(at + 1, "outcome", np.where(label >= 0, out, ""))
    return table
