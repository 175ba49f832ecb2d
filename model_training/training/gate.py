"""Fit a bundle's quality gate and record it: the file in the bundle, its limits and figures in the card.

Training fits it when it finishes a bundle (``finish.finalize_bundle``), recalibration fits it again on a
site's own tiles, and ``python -m model_training.cli.fit_gate`` fits it for an existing bundle.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model_training.bundle.contract import TILE_MPP
from model_training.bundle.files import GATE_FILE, sha256, write_card
from model_training.data.sources import open_source
from model_training.data.subsets import stratified_subset
from model_training.evaluation.gate_figures import gate_figures
from model_training.inference.gate import GLASS_MAX, REASONS, fit_gate
from model_training.inference.predictor import Predictor
from model_training.slides.reader import open_slide
from model_training.slides.scoring import overview
from model_training.slides.tiles import iter_tile_batches

METHOD = ("verdicts in order: background (>= {glass:.0%} of the tile is glass), fold (share of fold-dark stained "
          "pixels above dark_max), pen (share of ink-coloured pixels above ink_max), blur (variance of the Laplacian "
          "below sharpness_min), out-of-distribution (ood > 1: the larger of the Mahalanobis distances of the "
          "log-scaled pooled features and of the stain statistics, each over its limit; Gaussians with "
          "Ledoit-Wolf shrinkage)").format(glass=GLASS_MAX)
FIT_TILES = 6000


def slide_tiles(paths: list[Path], mpp: float = TILE_MPP, stride: int = 48) -> np.ndarray:
    """Every tissue tile of the slides at ``paths``, read at the model's resolution (overlapping by half)."""
    out = []
    for path in paths:
        with open_slide(path, target_mpp=mpp) as slide:
            ov = overview(slide, mpp, stride)
            out += [tiles for _, tiles in iter_tile_batches(slide, ov.grid, mpp, 256)]
    return np.concatenate(out) if out else np.zeros((0, 96, 96, 3), np.uint8)


def fit_bundle_gate(pred: Predictor, bundle: Path, fit_tiles: np.ndarray, held_tiles: np.ndarray,
                    figure_tiles: np.ndarray, figure_labels: np.ndarray, *, fitted_on: str,
                    other_organ: np.ndarray | None = None, other_source: str = "") -> dict:
    """Fit the gate on ``fit_tiles`` (densities) and ``held_tiles`` (limits), write ``bundle/quality_gate.npz``,
    measure it on labelled ``figure_tiles`` (and their blurred and pen-marked copies, and ``other_organ``) and
    return the card's ``quality_gate`` entry (the card itself is the caller's to write)."""
    _, fit_features = pred.logits_and_features(fit_tiles)
    _, held_features = pred.logits_and_features(held_tiles)
    if fit_features is None:
        raise ValueError(f"{bundle}: this engine gives no pooled features; export model.onnx again "
                         "(python -m model_training.cli.onnx_export) or fit with the Keras model")
    gate = fit_gate(fit_tiles, fit_features, held_tiles, held_features)
    path = Path(bundle) / GATE_FILE
    gate.save(path)
    pred.gate = gate
    figures = gate_figures(pred, figure_tiles, figure_labels, other_organ)
    entry = {"file": GATE_FILE, "sha256": sha256(path), "source_sha256": pred.sha256, "engine": pred.engine.name,
             "method": METHOD, "verdicts": ["ok", *REASONS], "limits": gate.limits, "fitted_on": fitted_on,
             "figures": figures, "command": "python -m model_training.cli.fit_gate BUNDLE --data PCAM_ROOT"}
    if other_source:
        entry["other_organ_source"] = other_source
    return entry


def fit_gate_for_bundle(bundle: Path, data: Path, other_slides: list[Path] = (), *, engine: str = "auto",
                        n_fit: int = FIT_TILES, seed: int = 0) -> dict:
    """Fit an existing bundle's gate: densities on ``n_fit`` training tiles, limits on every other validation
    tile, figures on the rest (and on the tissue of ``other_slides``, which should not be lymph node)."""
    pred = Predictor.load(bundle, warm_up=False, engine=engine)
    fit_x = stratified_subset(open_source(Path(data), "train"), n_fit, seed).load_all()[0]
    val_x, val_y = open_source(Path(data), "valid").load_all()[:2]
    limits, held = np.arange(len(val_x)) % 2 == 0, np.arange(len(val_x)) % 2 == 1
    other = slide_tiles(list(other_slides)) if other_slides else None
    # limits from one half of the validation tiles, figures from the other: the figures are held out
    entry = fit_bundle_gate(pred, bundle, fit_x, val_x[limits], val_x[held], val_y[held],
                            fitted_on=f"densities: {len(fit_x)} training tiles of {Path(data).name}; limits: "
                                      f"{int(limits.sum())} validation tiles (even positions); figures: the "
                                      f"other {int(held.sum())} (odd positions)",
                            other_organ=other, other_source=", ".join(Path(p).name for p in other_slides))
    card = pred.card
    card["quality_gate"] = entry
    write_card(bundle, card)
    return entry
