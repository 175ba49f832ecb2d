"""The dataset layouts PathReview understands: Kaggle folder + CSV, PCam HDF5, class folders, unlabelled folders.

Every layout yields the same thing: uint8 RGB tiles of shape (96, 96, 3), a label in {0, 1} (or -1 when
unlabeled) and a string id. Bad files never stop a batch: they are reported with the file and reason.
"""
from __future__ import annotations

import csv
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from model_training.bundle.contract import TILE
from model_training.data.decode import IMAGE_EXTS, TileError, read_tile

H5_RE = re.compile(r"camelyonpatch_level_2_split_(?P<split>\w+?)_x\.h5$")


class DatasetError(ValueError):
    """A dataset whose layout or labels are unusable as a whole."""


@dataclass
class Problem:
    """One reported issue with a dataset: the file (and CSV line, when known) and the reason."""

    file: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


@dataclass
class TileSource:
    """An indexable labeled tile collection; ``get`` decodes lazily."""

    ids: list[str]
    labels: np.ndarray
    description: str
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def subset(self, idx: Sequence[int]) -> "TileSource":
        return SubsetSource(self, np.asarray(idx, dtype=np.int64))

    def load_all(self, workers: int = 4) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Decode everything into RAM; unreadable tiles are skipped and added to ``problems``."""
        def one(i: int):
            try:
                return self.get(i)
            except TileError as exc:
                self.problems.append(Problem(exc.name, exc.reason))
                return None

        with ThreadPoolExecutor(workers) as pool:
            tiles = list(pool.map(one, range(len(self))))
        keep = [i for i, t in enumerate(tiles) if t is not None]
        x = np.stack([tiles[i] for i in keep]) if keep else np.zeros((0, TILE, TILE, 3), np.uint8)
        return x, self.labels[keep], [self.ids[i] for i in keep]


class FileSource(TileSource):
    def __init__(self, paths: list[Path], ids: list[str], labels: np.ndarray, description: str,
                 problems: list[Problem] | None = None):
        super().__init__(ids, np.asarray(labels, dtype=np.int64), description, problems or [])
        self.paths = paths

    def get(self, i: int) -> np.ndarray:
        return read_tile(self.paths[i])


class SubsetSource(TileSource):
    def __init__(self, parent: TileSource, idx: np.ndarray):
        super().__init__([parent.ids[i] for i in idx], parent.labels[idx], parent.description,
                         parent.problems)
        self.parent, self.idx = parent, idx

    def get(self, i: int) -> np.ndarray:
        return self.parent.get(int(self.idx[i]))


class H5Source(TileSource):
    """PCam HDF5 pair, read lazily: only the requested tiles leave the file."""

    def __init__(self, x_path: Path, y_path: Path | None):
        import h5py

        self.x_path = x_path
        self._h5 = None
        try:
            with h5py.File(x_path, "r") as f:
                n, shape = f["x"].shape[0], f["x"].shape[1:]
        except (OSError, KeyError) as exc:
            raise DatasetError(f"{x_path.name}: not a PCam HDF5 file with a dataset 'x' ({exc})") from exc
        if tuple(shape) != (TILE, TILE, 3):
            raise DatasetError(f"{x_path.name}: dataset 'x' has tiles of shape {shape}, expected (96, 96, 3)")
        labels = np.full(n, -1, np.int64)
        if y_path is not None:
            with h5py.File(y_path, "r") as f:
                y = np.asarray(f["y"]).reshape(-1)
            if len(y) != n:
                raise DatasetError(f"{y_path.name}: {len(y)} labels for {n} tiles in {x_path.name}")
            bad = np.flatnonzero(~np.isin(y, (0, 1)))
            if len(bad):
                raise DatasetError(f"{y_path.name}: label {y[bad[0]]} at index {bad[0]} is not 0 or 1")
            labels = y.astype(np.int64)
        split = H5_RE.search(x_path.name)
        prefix = split.group("split") if split else x_path.stem
        super().__init__([f"{prefix}_{i}" for i in range(n)], labels, f"PCam HDF5 {x_path.name}")

    def get(self, i: int) -> np.ndarray:
        import h5py

        if self._h5 is None:
            self._h5 = h5py.File(self.x_path, "r")
        return np.asarray(self._h5["x"][i], dtype=np.uint8)

    def __getstate__(self):  # h5py handles do not pickle; reopen lazily in the worker
        state = self.__dict__.copy()
        state["_h5"] = None
        return state


def _index_images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def read_labels_csv(csv_path: Path) -> tuple[dict[str, int], list[Problem]]:
    """Parse an ``id,label[,...]`` CSV; bad rows are reported with their line number and skipped."""
    labels: dict[str, int] = {}
    problems: list[Problem] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if "id" not in header or "label" not in header:
            raise DatasetError(f"{csv_path.name}: line 1 must be a header with columns 'id' and 'label' "
                               f"(found {header})")
        i_id, i_label = header.index("id"), header.index("label")
        for row in reader:
            line = reader.line_num
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) <= max(i_id, i_label):
                problems.append(Problem(csv_path.name, f"expected {len(header)} columns, got {len(row)}", line))
                continue
            tid, raw = row[i_id].strip(), row[i_label].strip()
            if raw not in ("0", "1"):
                problems.append(Problem(csv_path.name, f"label {raw!r} for id {tid!r} is not 0 or 1", line))
                continue
            if tid in labels:
                problems.append(Problem(csv_path.name, f"duplicate id {tid!r}", line))
                continue
            labels[tid] = int(raw)
    return labels, problems


def kaggle_source(image_dir: Path, csv_path: Path) -> FileSource:
    """Kaggle layout: ``image_dir/<id>.<ext>`` plus a CSV ``id,label``."""
    labels, problems = read_labels_csv(csv_path)
    images = _index_images(image_dir)
    ids = [i for i in labels if i in images]
    problems += [Problem(f"{image_dir.name}/{i}", f"listed in {csv_path.name} but no image file found")
                 for i in labels if i not in images]
    problems += [Problem(images[s].name, f"image has no label in {csv_path.name}")
                 for s in images if s not in labels]
    return FileSource([images[i] for i in ids], ids, np.array([labels[i] for i in ids]),
                      f"Kaggle layout {image_dir}", problems)


def class_folder_source(root: Path) -> FileSource:
    """Class folders: ``root/0/*`` negatives and ``root/1/*`` positives (a missing one is reported)."""
    paths, ids, labels, problems = [], [], [], []
    for label in (0, 1):
        folder = root / str(label)
        if not folder.is_dir():
            problems.append(Problem(str(folder), f"no {label}/ folder: the dataset has no "
                                                 f"{'tumour' if label else 'normal'} tiles"))
            continue
        for stem, p in _index_images(folder).items():
            paths.append(p), ids.append(stem), labels.append(label)
    return FileSource(paths, ids, np.array(labels, dtype=np.int64), f"class folders {root}", problems)


def unlabeled_source(folder: Path) -> FileSource:
    """A plain folder of images (e.g. Kaggle test/) with no labels; labels are -1."""
    images = _index_images(folder)
    return FileSource(list(images.values()), list(images), np.full(len(images), -1), f"folder {folder}")


def shortened(text: str, limit: int = 120) -> str:
    """A path as a message shows it: whole, or its two ends when it is longer than ``limit``."""
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]} ({len(text):,} characters)"


def open_source(path: str | Path, split: str | None = None, labels_csv: str | Path | None = None) -> TileSource:
    """Open a dataset by path, detecting its layout.

    ``path`` may be: an image folder (with ``labels_csv`` or a sibling ``<folder>_labels.csv``), a class-
    folder root, a PCam ``*_x.h5`` file, or a dataset root holding ``<split>/`` + ``<split>_labels.csv`` or
    ``camelyonpatch_level_2_split_<split>_x.h5``.
    """
    path = Path(path)
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise DatasetError(f"{shortened(str(path))}: {exc.strerror or exc}") from None
    if not exists:
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix == ".h5":
        y = path.with_name(path.name.replace("_x.h5", "_y.h5"))
        return H5Source(path, y if y.exists() and y != path else None)
    if split is not None:
        h5 = path / f"camelyonpatch_level_2_split_{split}_x.h5"
        if h5.exists():
            return open_source(h5)
        if (path / split).is_dir():
            return open_source(path / split, labels_csv=labels_csv)
        raise DatasetError(f"{path}: no '{split}/' folder and no {h5.name}")
    if labels_csv is not None:
        return kaggle_source(path, Path(labels_csv))
    for candidate in (path.parent / f"{path.name}_labels.csv", path / "labels.csv"):
        if candidate.exists():
            return kaggle_source(path, candidate)
    if (path / "0").is_dir() or (path / "1").is_dir():
        return class_folder_source(path)
    h5s = sorted(path.glob("camelyonpatch_level_2_split_*_x.h5"))
    if h5s:
        return open_source(h5s[0])
    csvs = sorted(path.glob("*.csv"))
    subdirs = [d for d in path.iterdir() if d.is_dir()]
    if len(csvs) == 1 and len(subdirs) == 1:  # root holding train/ + train_labels.csv
        return kaggle_source(subdirs[0], csvs[0])
    if _index_images(path):
        return unlabeled_source(path)
    raise DatasetError(f"{path}: not a Kaggle folder + CSV, class folders (0/, 1/) or PCam HDF5 layout")


def iter_batches(source: TileSource, batch: int = 256) -> Iterable[tuple[np.ndarray, list[str], np.ndarray]]:
    """Stream (tiles, ids, labels) in order with bounded memory; unreadable tiles go to ``problems``."""
    for start in range(0, len(source), batch):
        tiles, ids, labels = [], [], []
        for i in range(start, min(start + batch, len(source))):
            try:
                tiles.append(source.get(i))
            except TileError as exc:
                source.problems.append(Problem(exc.name, exc.reason))
                continue
            ids.append(source.ids[i]), labels.append(source.labels[i])
        if tiles:
            yield np.stack(tiles), ids, np.asarray(labels)
