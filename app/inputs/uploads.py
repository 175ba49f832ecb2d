"""Decoding a batch of uploaded tiles into a per-session list, with one message per file that failed."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Iterable

import numpy as np

from app.inputs import archives
from app.store.audit_csv import pixel_sha256
from model_training.bundle.disclaimer import DISCLAIMER
from model_training.data.decode import TileError, read_tile
from model_training.data.spreadsheet import csv_bytes
from model_training.inference.predictor import Prediction

if TYPE_CHECKING:  # imported where used: pandas would add 0.3 s to the app's first page
    import pandas as pd

MAX_FILES = 500
MAX_FILE_MB = 5
MAX_FILE_BYTES = MAX_FILE_MB * 1024 * 1024
UPLOAD_TYPES = ["tif", "tiff", "png", "jpg", "jpeg"]
BATCH_UPLOAD_TYPES = UPLOAD_TYPES + archives.ARCHIVE_TYPES  # the Analyze page's drop zone also takes a .zip


@dataclass
class TileRecord:
    """One decoded tile; ``name`` is unique within the batch, ``upload_name`` is what the user sent."""

    name: str
    upload_name: str
    tile: np.ndarray
    sha256: str
    note: str = ""


@dataclass
class DecodedBatch:
    records: list[TileRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (upload name, name used here)
    skipped: list[str] = field(default_factory=list)  # beyond MAX_FILES
    wrong_size: list[str] = field(default_factory=list)  # larger than 96x96 and not cropped

    @property
    def tiles(self) -> np.ndarray:
        if not self.records:
            return np.zeros((0, 96, 96, 3), np.uint8)
        return np.stack([r.tile for r in self.records])


def unique_names(names: Iterable[str]) -> list[str]:
    """Disambiguate repeated names: ``a.tif``, ``a (2).tif``, ``a (3).tif`` (never clashing with a real name)."""
    names = [PurePath(n).name or "unnamed" for n in names]
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        p = PurePath(name)
        k = 2
        while (candidate := f"{p.stem} ({k}){p.suffix}") in taken or candidate in seen:
            k += 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _size(data) -> int:
    return len(data) if isinstance(data, (bytes, bytearray, memoryview)) else int(data.size)


def decode_uploads(files: Iterable[tuple[str, object]], *, crop: bool = False,
                   max_files: int = MAX_FILES, max_bytes: int = MAX_FILE_BYTES) -> DecodedBatch:
    """Decode ``(name, data)`` pairs with ``read_tile``; bad files become messages, the rest are kept.

    ``data`` is bytes or an uploaded file (``.size``, ``.getvalue()``), read only once it passed the checks.
    A .zip stands for its image members (``archives``); their ``upload_name`` is ``archive/member``.

    With ``crop``, images larger than 96x96 are centre-cropped (and noted); without it they are errors
    that point to the centre-crop option and the region view.
    """
    expanded = archives.expand(list(files), max_member_bytes=max_bytes, max_members=max_files)
    batch = DecodedBatch()
    names = unique_names(n for n, _, _ in expanded.files)
    for (sent, data, upload_name), name in zip(expanded.files, names):
        if name != PurePath(upload_name).name:
            batch.renamed.append((upload_name, name))
        label = upload_name if upload_name != sent else name  # an archive member: archive/member
        if len(batch.records) + len(batch.errors) >= max_files:
            batch.skipped.append(name)
            continue
        if _size(data) > max_bytes:
            batch.errors.append(f"{label}: is {_size(data) / 2**20:.1f} MB; the limit for a tile is "
                                f"{max_bytes / 2**20:.0f} MB")
            continue
        try:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                data = data.getvalue()  # an archive member is read here, one at a time
        except archives.MemberError as exc:
            batch.errors.append(str(exc))
            continue
        try:
            tile, note = read_tile(data, label), ""
        except TileError as exc:
            try:  # succeeds only when the size was the problem
                tile, note = read_tile(data, label, crop=True), "centre-cropped to 96x96"
            except TileError:
                tile = None
            if tile is not None and not crop:
                batch.wrong_size.append(name)
                tile = None
            if tile is None:
                batch.errors.append(str(exc))
                continue
        batch.records.append(TileRecord(name, upload_name, tile, pixel_sha256(tile), note))
    batch.errors.extend(expanded.errors)  # after the loop: only decoded files count towards max_files
    return batch


def results_table(records: list[TileRecord], pred: Prediction) -> pd.DataFrame:
    """One row per scored tile, in upload order."""
    import pandas as pd

    return pd.DataFrame({
        "file": [r.name for r in records],
        "P(tumour)": np.round(pred.p.astype(float), 4),
        "decision": pred.call,
        "quality": pred.quality.astype(str),
        "ood": np.round(pred.ood.astype(float), 2),
        "TTA spread": np.round(pred.spread.astype(float), 4),
        "needs review": pred.needs_review.astype(bool),
        "note": [r.note for r in records],
        "pixel sha256": [r.sha256[:16] for r in records],
    })


def table_csv(table: pd.DataFrame, model_sha256: str, threshold: float) -> bytes:
    """The results table as CSV, with the research-use disclaimer and the model on the first line."""
    return csv_bytes(table, f"{DISCLAIMER} Model sha256 {model_sha256}, threshold {threshold:.6f} (8-view TTA).")
