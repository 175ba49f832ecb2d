"""The reviewer audit log: columns, hashes of the real pixels, the disclaimer, concurrent appends."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from app.store import audit_csv
from model_training.bundle.files import sha256 as file_sha256
from model_training.data.decode import read_tile


@pytest.fixture(scope="module")
def kaggle_tiles(data_root) -> list[tuple[Path, np.ndarray]]:
    """Lossless Kaggle .tif tiles; their file stem is the SHA-1 of their raw RGB pixels."""
    paths = sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:4]
    assert len(paths) == 4
    return [(p, read_tile(p)) for p in paths]


def _row(path: Path, tile: np.ndarray, review="agree", **kw) -> dict:
    args = dict(file=path.name, tile=tile, model_sha256="ab" * 32, threshold=0.42, p=0.8, spread=0.03,
                review=review, reviewer="dr. a", comment="clear tumour")
    args.update(kw)
    return audit_csv.make_row(**args)


def test_rows_have_the_columns_and_the_hashes_of_the_real_pixels(tmp_path, kaggle_tiles):
    log = tmp_path / "sub" / "audit.csv"
    for path, tile in kaggle_tiles[:2]:
        audit_csv.append(_row(path, tile), log)
    audit_csv.append(_row(*kaggle_tiles[2], review="disagree", p=0.1, comment="only stroma"), log)

    with open(log, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == audit_csv.COLUMNS  # header written once, first
    assert len(rows) == 4 and all(len(r) == len(audit_csv.COLUMNS) for r in rows)
    df = audit_csv.read_csv_export(log)
    for (path, tile), (_, rec) in zip(kaggle_tiles[:3], df.iterrows()):
        assert rec["pixel_sha256"] == hashlib.sha256(tile.tobytes()).hexdigest()
        # the Kaggle id is the SHA-1 of the same raw pixels: the hash covers exactly the decoded RGB tile
        assert hashlib.sha1(tile.tobytes()).hexdigest() == path.stem
        assert rec["file"] == path.name and rec["model_sha256"] == "ab" * 32
    assert list(df["model_decision"]) == ["tumour", "tumour", "normal"]
    assert list(df["review"]) == ["agree", "agree", "disagree"]
    assert df.loc[2, "comment"] == "only stroma" and df.loc[0, "reviewer"] == "dr. a"
    assert float(df.loc[0, "threshold"]) == pytest.approx(0.42)
    assert dt.datetime.fromisoformat(df.loc[0, "timestamp"]).tzinfo is not None


def test_model_sha_is_the_bundle_file_hash(tmp_path, kaggle_tiles):
    """The app passes ``Predictor.sha256`` (the card's hash, verified against model.keras at load)."""
    model = tmp_path / "model.keras"
    model.write_bytes(b"not really a model, but a file with a known hash")
    row = _row(*kaggle_tiles[0], model_sha256=file_sha256(model))
    assert row["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_export_starts_with_the_disclaimer_and_round_trips(kaggle_tiles):
    from model_training.bundle.disclaimer import DISCLAIMER

    rows = [_row(path, tile, comment='multi\nline, "quoted"') for path, tile in kaggle_tiles]
    data = audit_csv.export_csv(rows)
    first, _ = data.decode("utf-8").split("\n", 1)
    assert first.startswith("#") and DISCLAIMER in first
    df = audit_csv.read_csv_export(data)
    assert list(df.columns) == audit_csv.COLUMNS and len(df) == 4
    assert df.loc[0, "comment"] == 'multi\nline, "quoted"'


def test_free_text_cannot_inject_spreadsheet_formulas(kaggle_tiles):
    row = _row(*kaggle_tiles[0], comment="=HYPERLINK(\"http://x\")", reviewer="+1", file="@evil.tif")
    assert row["comment"].startswith("'=") and row["reviewer"] == "'+1" and row["file"] == "'@evil.tif"


def test_invalid_review_or_probability_is_refused(kaggle_tiles):
    with pytest.raises(ValueError, match="review must be one of"):
        _row(*kaggle_tiles[0], review="maybe")
    with pytest.raises(ValueError, match="finite"):
        _row(*kaggle_tiles[0], p=float("nan"))


def _writer(args) -> None:
    log, worker, n, tile = args
    comment = f"worker {worker} " + "x" * 3000  # long rows make torn writes visible if they happened
    for i in range(n):
        audit_csv.append(audit_csv.make_row(file=f"w{worker}-{i}.tif", tile=tile, model_sha256="cd" * 32, threshold=0.5,
                                    p=0.7, spread=0.0, review="unsure", comment=comment), log)


def test_concurrent_writers_never_interleave(tmp_path, kaggle_tiles):
    log, tile = tmp_path / "audit.csv", kaggle_tiles[0][1]
    workers, n = 4, 50
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_writer, [(log, w, n, tile) for w in range(workers)])
    with open(log, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == audit_csv.COLUMNS and audit_csv.COLUMNS not in rows[1:]
    assert len(rows) == 1 + workers * n
    assert all(len(r) == len(audit_csv.COLUMNS) for r in rows)
    assert {r[2] for r in rows[1:]} == {f"w{w}-{i}.tif" for w in range(workers) for i in range(n)}
