"""Validation browser data: open a labeled dataset, sample it, score it once per (dataset, model)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app.inputs import roots
from app.runtime import scoring, state
from model_training.data.sources import (DatasetError, FileSource, H5Source, Problem, TileSource, iter_batches,
                                         open_source, shortened)
from model_training.data.subsets import stratified_subset

DATA_ENV = roots.DATA_ENV
DEFAULT_MAX_TILES = 1000
MAX_TILES = 5000  # per browser view; scoring is cached per dataset and model
SEED = 0
OUTCOMES = ("TP", "FP", "FN", "TN")
SCORED = "pathreview_dataset_scores"  # session key: the last scored dataset, for the Performance page


def default_path() -> str:
    """The first folder of ``$PATHREVIEW_DATA`` (it may list several, separated by ``os.pathsep``)."""
    return next(iter(roots.split(os.environ.get(DATA_ENV))), "")


def configured() -> tuple[str, str]:
    """(usable $PATHREVIEW_DATA or "", why it is not usable or "").

    ``make run`` points the variable at a sibling data folder and the Docker image at /data, whether or not
    anything is there; the pages then fall back to the example tiles and say why.
    """
    path = default_path().strip()
    if not path:
        return "", f"`{DATA_ENV}` is not set"
    root = Path(path).expanduser()
    if not root.exists():
        return "", f"`{DATA_ENV}={path}` does not exist"
    try:
        if root.is_dir() and not any(root.iterdir()):
            return "", f"`{DATA_ENV}={path}` is an empty folder"
    except OSError:  # unreadable: opening it will report why
        pass
    return path, ""


def open_dataset(path: str) -> TileSource:
    """A dataset root's ``valid`` split when it has one, else whatever layout ``path`` itself is.

    Only inside the configured roots: ``roots.PathRefused`` otherwise.
    """
    allowed = roots.roots()
    root = roots.check(path, allowed)
    try:
        if (root / "valid").is_dir() or (root / "camelyonpatch_level_2_split_valid_x.h5").exists():
            return confine(open_source(root, "valid"), allowed)
        return confine(open_source(root), allowed)
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise DatasetError(f"{shortened(str(root), 200)}: {exc.strerror or exc}") from None


def confine(source: TileSource, allowed: list[Path]) -> TileSource:
    """``source`` without the files that resolve outside ``allowed`` (a linked folder or file inside a dataset
    pointing elsewhere): only the typed path was checked so far, and every file the app opens must pass too.
    What is dropped is counted among the source's problems, without saying where the links lead."""
    if isinstance(source, H5Source):
        for p in (source.x_path, getattr(source, "y_path", None)):
            if p is not None and not roots.inside(Path(os.path.realpath(p)), allowed):
                raise roots.PathRefused(f"{p.name} links outside the folders this server may open.")
        return source
    if not isinstance(source, FileSource):
        return source
    keep = [i for i, p in enumerate(source.paths) if roots.inside(Path(os.path.realpath(p)), allowed)]
    if len(keep) == len(source.paths):
        return source
    outside = len(source.paths) - len(keep)
    confined = FileSource([source.paths[i] for i in keep], [source.ids[i] for i in keep], source.labels[keep],
                          source.description, list(source.problems))
    confined.problems.append(Problem(source.description, f"{outside} file(s) link outside the folders this server "
                                                         "may open; skipped"))
    return confined


def sample(source: TileSource, n: int, seed: int = SEED) -> TileSource:
    """A reproducible class-stratified sample of ``n`` tiles (all of them when there are fewer)."""
    if n >= len(source):
        return source
    if len(set(source.labels.tolist())) > 1:
        return stratified_subset(source, n, seed)
    idx = np.sort(np.random.default_rng(seed).choice(len(source), n, replace=False))
    return source.subset(idx)


@st.cache_resource(max_entries=4, show_spinner="Opening the dataset…")
def load(path: str, n: int) -> TileSource:
    """The (sampled) dataset; shared by sessions, raises DatasetError with a message."""
    source = open_dataset(path)
    if len(source) == 0:
        raise DatasetError(f"{path}: the dataset holds no readable tiles")
    return sample(source, n)


def score(source: TileSource, pred, tta: bool, lock=None, batch: int = 256) -> pd.DataFrame:
    """Stream the dataset through the model (bounded memory); one row per readable tile."""
    index = {tid: i for i, tid in enumerate(source.ids)}
    rows = []
    for tiles, ids, labels in iter_batches(source, batch):
        res = scoring.predict(pred, tiles, tta=tta, lock=lock)
        rows.append(pd.DataFrame({"i": [index[t] for t in ids], "id": ids, "label": labels.astype(int),
                                  "p": res.p.astype(float), "spread": res.spread.astype(float)}))
    if not rows:
        return pd.DataFrame(columns=["i", "id", "label", "p", "spread"])
    return pd.concat(rows, ignore_index=True)


@st.cache_data(max_entries=8, show_spinner="Scoring the dataset (once per dataset and model)…")
def scored(path: str, n: int, tta: bool, model_sha256: str, _pred) -> pd.DataFrame:
    """``score`` cached per dataset path, sample size, TTA and model hash (``_pred`` is not hashed)."""
    return score(load(path, n), _pred, tta, lock=state.inference_lock())


def outcome(labels: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """TP / FP / FN / TN per tile; unlabeled tiles (-1) are 'pred +' or 'pred −'."""
    labels, pos = np.asarray(labels), np.asarray(p) >= threshold
    out = np.where(pos, np.where(labels == 1, "TP", "FP"), np.where(labels == 1, "FN", "TN")).astype(object)
    out[labels < 0] = np.where(pos[labels < 0], "pred +", "pred −")
    return out


def sort_frame(df: pd.DataFrame, how: str, threshold: float) -> pd.DataFrame:
    keys = {"P(tumour), high → low": (df["p"], False), "P(tumour), low → high": (df["p"], True),
            "uncertainty: closest to the threshold": ((df["p"] - threshold).abs(), True),
            "TTA spread, high → low": (df["spread"], False), "dataset order": (df["i"], True)}
    key, ascending = keys[how]
    return df.assign(_k=key).sort_values("_k", ascending=ascending, kind="stable").drop(columns="_k")


SORTS = ("P(tumour), high → low", "P(tumour), low → high", "uncertainty: closest to the threshold",
         "TTA spread, high → low", "dataset order")
