"""Fast checks of the app's pure helpers on real tiles: upload decoding, region tiling, chunked scoring."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.display.imaging import enlarge, outline_centre
from app.inputs import regions, uploads
from app.runtime import scoring
from model_training.data.decode import read_tile
from model_training.inference.predictor import Prediction, dihedral_views


@pytest.fixture(scope="module")
def tifs(data_root) -> list[Path]:
    return sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:6]


def test_unique_names_disambiguates_without_clashing():
    assert uploads.unique_names(["a.tif", "b.tif", "a.tif", "a (2).tif", "a.tif", "dir/c.png"]) == \
        ["a.tif", "b.tif", "a (3).tif", "a (2).tif", "a (4).tif", "c.png"]


def test_decode_keeps_good_tiles_and_explains_every_bad_file(tifs):
    files = [(p.name, p.read_bytes()) for p in tifs[:3]]
    limit = max(len(f[1]) for f in files)
    files += [("zero.tif", b""), ("readme.png", b"plain text"), ("cut.tif", tifs[3].read_bytes()[:500]),
              ("huge.tif", tifs[4].read_bytes() + b"\0" * (limit + 1 - len(tifs[4].read_bytes())))]
    batch = uploads.decode_uploads(files, max_bytes=limit)
    assert [r.name for r in batch.records] == [p.name for p in tifs[:3]]
    assert all(r.tile.shape == (96, 96, 3) and r.tile.dtype == np.uint8 for r in batch.records)
    assert np.array_equal(batch.tiles[1], read_tile(tifs[1]))
    reasons = dict(e.split(": ", 1) for e in batch.errors)
    assert list(reasons) == ["zero.tif", "readme.png", "cut.tif", "huge.tif"]
    assert "empty" in reasons["zero.tif"] and "not an image" in reasons["readme.png"]
    assert "corrupt or truncated" in reasons["cut.tif"] and "the limit for a tile" in reasons["huge.tif"]


def test_decode_limits_the_batch_size(tifs):
    files = [(p.name, p.read_bytes()) for p in tifs]
    batch = uploads.decode_uploads(files, max_files=4)
    assert len(batch.records) == 4 and batch.skipped == [p.name for p in tifs[4:]]


def test_wrong_size_is_rejected_unless_cropped(tifs):
    big = np.concatenate([read_tile(tifs[0]), read_tile(tifs[1])], axis=1)  # 96 x 192
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    plain = uploads.decode_uploads([("wide.png", buf.getvalue())])
    assert not plain.records and plain.wrong_size == ["wide.png"] and "192x96" in plain.errors[0]
    cropped = uploads.decode_uploads([("wide.png", buf.getvalue())], crop=True)
    assert np.array_equal(cropped.records[0].tile, big[:, 48:144]) and cropped.records[0].note


def test_region_grid_and_tile_positions():
    img = np.arange(300 * 400 * 3, dtype=np.uint32).reshape(300, 400, 3).astype(np.uint8)
    ys, xs = regions.grid(img.shape, 48)
    assert list(ys) == [0, 48, 96, 144, 192] and list(xs) == [0, 48, 96, 144, 192, 240, 288]
    calls = []

    def fake_predict(batch):  # mean of the first pixel row: identifies each tile
        calls.append(len(batch))
        return batch[:, 0, 0, 0] / 255.0

    scores = regions.score_region(img, 48, fake_predict, threshold=0.5, batch=16)
    assert scores.p.shape == (5, 7) and sum(calls) == 35 and max(calls) == 16
    for flat in range(35):
        t, y, x = scores.tile_at(img, flat)
        assert np.array_equal(t, img[y:y + 96, x:x + 96])
        assert scores.p.reshape(-1)[flat] == pytest.approx(img[y, x, 0] / 255.0)
    top = scores.top_k(3)
    assert list(scores.p.reshape(-1)[top]) == sorted(scores.p.reshape(-1), reverse=True)[:3]
    fig = regions.heatmap_figure(img, scores, highlight=(48, 96))
    assert fig.data[0].z.shape == (5, 7) and len(fig.layout.images) == 1


def test_region_limits():
    with pytest.raises(regions.RegionError, match="at least 96x96"):
        regions.check_region(np.zeros((95, 500, 3), np.uint8), "thin.png")
    with pytest.raises(regions.RegionError, match="at most 2048x2048"):
        regions.check_region(np.zeros((2049, 100, 3), np.uint8), "tall.png")


class FakePredictor:
    """Deterministic stand-in with the Predictor.predict contract (mean pixel as the logit)."""

    def threshold(self, tta=True):
        return 0.5

    def predict(self, x, tta=False, look=False):
        tta = tta or look
        v = dihedral_views(x).mean(axis=(2, 3, 4)) / 255.0 if tta else None
        p = v.mean(axis=1) if tta else x.mean(axis=(1, 2, 3)) / 255.0
        return Prediction(p, p, v, v.std(axis=1) if tta else np.zeros(len(p)), 0.5)


@pytest.mark.parametrize("tta", [False, True])
def test_chunked_scoring_equals_one_call(tifs, tta):
    x = np.stack([read_tile(p) for p in tifs])
    whole = FakePredictor().predict(x, tta=tta)
    seen = []
    parts = scoring.predict(FakePredictor(), x, tta=tta, chunk=4, progress=seen.append)
    np.testing.assert_allclose(parts.p, whole.p)
    np.testing.assert_allclose(parts.spread, whole.spread)
    assert (parts.views is None) == (not tta) and seen == [4 / 6, 1.0]
    empty = scoring.predict(FakePredictor(), x[:0], tta=tta)
    assert len(empty.p) == 0


def test_enlarged_tile_outlines_the_centre_label_region(tifs):
    tile = read_tile(tifs[0])
    big = outline_centre(enlarge(tile, 4))
    assert big.shape == (384, 384, 3)
    assert (big[128:256, 128] == (0, 255, 0)).all() and (big[128, 128:256] == (0, 255, 0)).all()
    assert np.array_equal(big[:100, :100], enlarge(tile, 4)[:100, :100])  # outside the box untouched


def test_every_heatmap_cell_is_clickable_and_maps_back_to_its_tile(valid_tiles):
    img = np.concatenate([np.concatenate(list(valid_tiles[0][r * 3:(r + 1) * 3]), axis=1) for r in range(2)])
    scores = regions.score_region(img, 48, lambda t: t.mean(axis=(1, 2, 3)) / 255.0, 0.5)
    fig = regions.heatmap_figure(img, scores)
    trace = next(t for t in fig.data if t.name == regions.CLICK_TRACE)
    assert len(trace.customdata) == scores.n == len(scores.ys) * len(scores.xs)
    for idx in (0, scores.n - 1, 7):
        tile, y, x = scores.tile_at(img, idx)
        # the clickable point sits on the centre of the tile it opens
        assert (trace.x[idx], trace.y[idx]) == (x + 48, y + 48)
        event = {"selection": {"points": [{"x": trace.x[idx], "y": trace.y[idx], "customdata": [idx]}]}}
        assert regions.clicked_tile(event) == idx
    assert regions.clicked_tile({"selection": {"points": []}}) is None and regions.clicked_tile(None) is None


def _zip(entries: list[tuple[str, bytes]], *, compression=None) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression or zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_of_tiles_is_decoded_like_the_files_in_it(tifs):
    """A folder of tiles sent as one archive: same pixels as the files, every unusable member named."""
    archive = _zip([("case 12/" + p.name, p.read_bytes()) for p in tifs[:3]]
                   + [("case 12/more/" + tifs[0].name, tifs[3].read_bytes()),  # same name, another folder
                      ("case 12/notes.txt", b"stain batch 7"), ("case 12/cut.tif", tifs[4].read_bytes()[:500]),
                      ("__MACOSX/case 12/._" + tifs[0].name, b"\0\5\26\7"), ("case 12/.DS_Store", b"\0")])
    batch = uploads.decode_uploads([("single.tif", tifs[5].read_bytes()), ("case12.zip", archive)])
    assert [r.name for r in batch.records] == ["single.tif", *(p.name for p in tifs[:3]),
                                                tifs[0].stem + " (2)" + tifs[0].suffix]
    for record, path in zip(batch.records[1:], [*tifs[:3], tifs[3]]):
        assert np.array_equal(record.tile, read_tile(path))
    assert batch.records[1].upload_name == f"case12.zip/case 12/{tifs[0].name}"
    assert batch.records[0].upload_name == "single.tif"
    assert batch.renamed == [(f"case12.zip/case 12/more/{tifs[0].name}", batch.records[4].name)]
    reasons = dict(e.split(": ", 1) for e in batch.errors)
    assert list(reasons) == ["case12.zip/case 12/cut.tif", "case12.zip/case 12/notes.txt"]
    assert "corrupt or truncated" in reasons["case12.zip/case 12/cut.tif"]
    assert "not a tile image" in reasons["case12.zip/case 12/notes.txt"]


def test_a_bad_archive_is_a_message_and_loses_nothing_else(tifs):
    good = (tifs[0].name, tifs[0].read_bytes())
    big = _zip([("big.tif", tifs[1].read_bytes() + b"\0" * 4096)], compression=0)
    empty = _zip([("readme.md", b"# nothing here")])
    batch = uploads.decode_uploads([good, ("broken.zip", b"PK\3\4 not really"), ("big.zip", big),
                                  ("empty.zip", empty), ("truncated.zip", _zip([good])[:-30])],
                                 max_bytes=len(tifs[1].read_bytes()) + 100)
    assert [r.name for r in batch.records] == [tifs[0].name]
    reasons = dict(e.split(": ", 1) for e in batch.errors)
    assert "not a readable .zip archive" in reasons["broken.zip"]
    assert "uncompressed; the limit for a tile" in reasons["big.zip/big.tif"]
    assert "not a tile image" in reasons["empty.zip/readme.md"]
    assert "not a readable .zip archive" in reasons["truncated.zip"]
    from app.inputs import archives

    over = archives.expand([("huge.zip", b"\0" * 2048)], max_member_bytes=10, max_members=5,
                                max_archive_bytes=1024)
    assert not over.files and "the limit for an archive of tiles is" in over.errors[0]


def test_a_small_zip_that_inflates_to_gigabytes_is_decoded_in_bounded_memory():
    """500 members of 5 MB (each at the per-tile limit) pack into about 2.5 MB: they are read one at a time,
    and those beyond the drop's uncompressed budget are skipped with one message."""
    import tracemalloc

    from app.inputs import archives

    filler = b"II*\0" + b"\0" * (5 * 2**20 - 5)  # a TIFF signature, then zeros: no image in it
    bomb = _zip([(f"t{i:03d}.tif", filler) for i in range(500)])
    assert len(bomb) < 4 * 2**20
    tracemalloc.start()
    try:
        batch = uploads.decode_uploads([("bomb.zip", bomb)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MB"
    budget = archives.MAX_UNCOMPRESSED_MB * 2**20 // len(filler)
    assert len(batch.records) + len(batch.errors) == budget + 1  # the members within budget, and one message
    assert batch.errors[-1].startswith(f"bomb.zip: {500 - budget} member(s) skipped")


def test_a_zip_counts_towards_the_batch_limit_and_is_read_no_further(tifs):
    archive = _zip([(f"t{i}.tif", tifs[i % len(tifs)].read_bytes()) for i in range(10)])
    batch = uploads.decode_uploads([(tifs[0].name, tifs[0].read_bytes()), ("many.zip", archive)], max_files=4)
    assert len(batch.records) == 4 and batch.skipped == [f"t{i}.tif" for i in range(3, 10)]


def test_a_member_named_like_a_windows_path_is_decoded_not_dropped(tifs):
    batch = uploads.decode_uploads([("win.zip", _zip([("..\\case 7\\evil.tif", tifs[0].read_bytes())]))])
    assert [r.name for r in batch.records] == ["evil.tif"] and not batch.errors
