"""The labelled tile sets a quiz may draw from, and reading a quiz tile's pixels by its dataset id.

A quiz stores the root it was drawn from; every read checks that root against ``allowed_sources()`` again, so
a database row can never make the app open a path outside the configured roots.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.inputs import datasets, example_tiles, roots
from model_training.data.sources import DatasetError, TileSource

_lock = threading.Lock()
_open: dict[str, tuple[TileSource, dict[str, int]]] = {}


@dataclass(frozen=True)
class QuizSource:
    kind: str  # "dataset" (the configured validation split) or "examples"
    root: str  # resolved path, as stored with the quiz
    name: str  # what the teacher picks from


_labelled: dict[str, bool] = {}


def _is_labelled(root: Path) -> bool:
    """Whether an operator's root opens as a labelled tile set (remembered: it is asked on every page run)."""
    key = str(root)
    if key not in _labelled:
        try:
            _labelled[key] = bool((np.asarray(datasets.open_dataset(key).labels) >= 0).any())
        except (DatasetError, roots.PathRefused, OSError):
            _labelled[key] = False
    return _labelled[key]


def allowed_sources() -> list[QuizSource]:
    """The quiz sources of this server: the validation split of ``$PATHREVIEW_DATA``, every other labelled
    dataset the operator listed in ``PATHREVIEW_DATA`` / ``PATHREVIEW_DATA_ROOTS``, and the shipped examples.

    The one place that decides which roots a quiz may read (within ``data_roots``' allow-list).
    """
    out = []
    path, _why_not = datasets.configured()
    if path:
        root = Path(path).expanduser().resolve()
        out.append(QuizSource("dataset", str(root), f"Validation split of PATHREVIEW_DATA ({root.name})"))
    for root in roots.roots(examples=False):
        if str(root) not in {s.root for s in out} and root.is_dir() and _is_labelled(root):
            out.append(QuizSource("dataset", str(root), f"Labelled dataset {root}"))
    if example_tiles.available():
        out.append(QuizSource("examples", str(example_tiles.folder().resolve()),
                              "The example tiles shipped with PathReview"))
    return out


def allowed(root: str) -> QuizSource | None:
    """The allowed source whose root is ``root``, else None."""
    return next((s for s in allowed_sources() if s.root == root), None)


def open_root(root: str) -> tuple[TileSource, dict[str, int]]:
    """The labelled set at an allowed ``root`` and its id → index map, opened once per process."""
    if allowed(root) is None:
        raise DatasetError(f"{root} is not one of this server's quiz sources")
    with _lock:  # one open per root, even when a class of students arrives at once
        if root not in _open:
            source = datasets.open_dataset(root)
            labelled = np.flatnonzero(np.asarray(source.labels) >= 0)
            if len(labelled) < len(source):
                source = source.subset(labelled)
            _open[root] = (source, {tid: i for i, tid in enumerate(source.ids)})
        return _open[root]


def read(root: str, tile_id: str) -> np.ndarray:
    """The uint8 96×96×3 pixels of tile ``tile_id`` of the source at ``root`` (raises TileError/DatasetError)."""
    source, index = open_root(root)
    if tile_id not in index:
        raise DatasetError(f"tile {tile_id} is not in {source.description}")
    return source.get(index[tile_id])
