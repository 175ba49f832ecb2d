"""The drop zone's message, as the server reads it: real tiles arrive intact, anything else becomes a message."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from app.inputs import drop_zone, uploads
from model_training.data.decode import read_tile


@pytest.fixture(scope="module")
def tifs(data_root) -> list[Path]:
    return sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:4]


def entry(name: str, data: bytes) -> dict:
    """One file as drop_zone.js sends it."""
    return {"name": name, "size": len(data), "data": base64.b64encode(data).decode("ascii"), "reason": None}


def test_dropped_tiles_decode_to_the_same_pixels_as_the_files(tifs):
    dropped = drop_zone.parse({"files": [entry(p.name, p.read_bytes()) for p in tifs]})
    assert not dropped.errors and [n for n, _ in dropped.files] == [p.name for p in tifs]
    batch = uploads.decode_uploads(dropped.files)
    assert not batch.errors
    np.testing.assert_array_equal(batch.tiles, np.stack([read_tile(p) for p in tifs]))
    assert dropped.n_bytes == sum(p.stat().st_size for p in tifs)
    again = drop_zone.parse({"files": [entry(tifs[0].name, tifs[0].read_bytes())]})
    assert again.drop_id != dropped.drop_id  # the same file dropped twice is scored twice


def test_files_the_browser_did_not_send_are_each_named_with_the_reason(tifs):
    good = entry(tifs[0].name, tifs[0].read_bytes())
    dropped = drop_zone.parse({"files": [
        {"name": "slide.svs", "size": 9 * 2**30, "data": None, "reason": "type"},
        good,
        {"name": "scan.png", "size": 6 * 2**20, "data": None, "reason": "size"},
        {"name": "cases.zip", "size": 150 * 2**20, "data": None, "reason": "size"},
        {"name": "late.tif", "size": 30_000, "data": None, "reason": "total"},
        {"name": "locked.tif", "size": 30_000, "data": None, "reason": "unreadable"},
    ]})
    assert [n for n, _ in dropped.files] == [tifs[0].name]
    assert dropped.errors == [
        "slide.svs: not a tile image (.tif .png .jpg) or a .zip of tiles; skipped",
        "scan.png: is 6.0 MB; the limit for a tile is 5 MB",
        "cases.zip: is 150.0 MB; the limit for an archive of tiles is 100 MB",
        f"late.tif: skipped, the files dropped together passed {drop_zone.MAX_DROP_MB} MB; drop the rest as "
        "another batch",
        "locked.tif: the browser could not read this file",
    ]


def test_a_damaged_or_forged_message_loses_nothing_else(tifs):
    data = tifs[1].read_bytes()
    dropped = drop_zone.parse({"files": [
        {"name": "cut.tif", "size": len(data), "data": base64.b64encode(data[:-10]).decode()},
        {"name": "noise.tif", "size": 12, "data": "not base64 at all!"},
        "just a string",
        {"name": "../../etc/passwd.tif", "size": len(data), "data": base64.b64encode(data).decode()},
        {"name": 7, "size": "big", "data": None},
    ]})
    assert dropped.errors[0] == f"cut.tif: arrived incomplete ({len(data) - 10} of {len(data)} bytes); drop it again"
    assert dropped.errors[1] == "noise.tif: arrived damaged (not valid base64); drop it again"
    assert dropped.errors[2] == "A dropped file came without a name and was skipped."
    assert dropped.errors[3].startswith("7: ")
    assert [n for n, _ in dropped.files] == ["etc/passwd.tif"]  # '..' never leaves a dropped name
    assert drop_zone.parse(None).errors == drop_zone.parse({"files": "x"}).errors == [
        "The drop could not be read (the browser sent no file list); try again."]


def test_a_drop_cannot_carry_more_than_the_limit(monkeypatch, tifs):
    monkeypatch.setattr(drop_zone, "MAX_DROP_MB", 1)
    data = tifs[0].read_bytes()
    fit = 2**20 // len(data)
    dropped = drop_zone.parse({"files": [entry(f"t{i}.tif", data) for i in range(fit + 3)]})
    assert [n for n, _ in dropped.files] == [f"t{i}.tif" for i in range(fit)]  # the server keeps the sum too
    assert [e.split(":")[0] for e in dropped.errors] == [f"t{i}.tif" for i in range(fit, fit + 3)]
    assert "skipped, the files dropped together passed 1 MB" in dropped.errors[0]
