"""Dataset readers on the real shared layouts and on generated bad inputs."""
from __future__ import annotations

import io
import shutil

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from model_training.data.decode import TileError, read_image, read_tile
from model_training.data.sources import DatasetError, iter_batches, open_source, read_labels_csv


def test_kaggle_tif_layout(data_root):
    src = open_source(data_root / "samples" / "kaggle-tif" / "train",
                      labels_csv=data_root / "samples" / "kaggle-tif" / "train_labels.csv")
    assert len(src) == 200 and not src.problems
    x, y, ids = src.load_all()
    assert x.shape == (200, 96, 96, 3) and x.dtype == np.uint8
    assert set(np.unique(y)) == {0, 1}
    # The Kaggle id is the SHA-1 of the raw RGB pixels: proves the .tif decodes losslessly.
    import hashlib
    assert hashlib.sha1(x[0].tobytes()).hexdigest() == ids[0]


def test_kaggle_root_with_split(data_root):
    src = open_source(data_root, "valid")
    assert len(src) == 2888
    assert int(src.labels.sum()) == 1407


def test_pcam_h5_matches_jpeg_labels(data_root):
    h5 = open_source(data_root / "samples" / "pcam-h5" / "camelyonpatch_level_2_split_valid_x.h5")
    assert len(h5) == 256
    assert h5.get(0).shape == (96, 96, 3)
    batches = list(iter_batches(h5, 100))
    assert [len(b[1]) for b in batches] == [100, 100, 56]
    # These are the first 256 patches of valid/, whose ids are the SHA-1 of the raw RGB pixels.
    import hashlib
    valid = open_source(data_root, "valid")
    assert np.array_equal(h5.labels, valid.labels[:256])
    for i in (0, 17, 255):
        assert hashlib.sha1(h5.get(i).tobytes()).hexdigest() == valid.ids[i]


def test_pcam_h5_is_read_lazily(data_root, tmp_path):
    src = data_root / "samples" / "pcam-h5"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    h5 = open_source(tmp_path, "valid")
    assert h5._h5 is None  # opening reads only shapes and labels
    tile = h5.get(5)
    assert h5._h5 is not None and tile.dtype == np.uint8


def test_class_folders(data_root, tmp_path):
    src = open_source(data_root / "samples" / "kaggle-tif" / "train",
                      labels_csv=data_root / "samples" / "kaggle-tif" / "train_labels.csv")
    for i in range(10):
        d = tmp_path / str(src.labels[i])
        d.mkdir(exist_ok=True)
        shutil.copy(src.paths[i], d / src.paths[i].name)
    cf = open_source(tmp_path)
    assert len(cf) == 10
    assert sorted(cf.labels.tolist()) == sorted(src.labels[:10].tolist())


@pytest.fixture
def real_tile(data_root) -> np.ndarray:
    return read_tile(next((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif")))


def _save(img: np.ndarray, path, **kw):
    Image.fromarray(img).save(path, **kw)
    return path


def test_conversions(real_tile, tmp_path):
    gray = _save(real_tile[:, :, 0], tmp_path / "g.png")
    assert read_tile(gray).shape == (96, 96, 3)
    rgba = np.dstack([real_tile, np.full((96, 96), 255, np.uint8)])
    assert np.array_equal(read_tile(_save(rgba, tmp_path / "a.png")), real_tile)
    t16 = tmp_path / "t16.tif"
    tifffile.imwrite(t16, real_tile.astype(np.uint16) * 257)
    assert np.array_equal(read_tile(t16), real_tile)


def test_bad_files_have_clear_messages(real_tile, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    buf = io.BytesIO()
    Image.fromarray(real_tile).save(buf, format="PNG")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(buf.getvalue()[:200])
    big = _save(np.zeros((128, 100, 3), np.uint8), tmp_path / "big.png")
    for path, words in ((empty, "empty"), (text, "not an image"), (trunc, "corrupt or truncated"),
                        (big, "100x128")):
        with pytest.raises(TileError) as exc:
            read_tile(path)
        assert path.name in str(exc.value) and words in str(exc.value)
    assert read_tile(big, crop=True).shape == (96, 96, 3)


def test_decompression_bomb_rejected(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(bomb)  # tiny file, 400 M pixels
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(TileError, match="too large"):
        read_image(bomb)


def test_csv_problems_carry_line_numbers(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("id,label\na,0\nb,2\na,1\nc\nd,1\n")
    labels, problems = read_labels_csv(csv)
    assert labels == {"a": 0, "d": 1}
    assert [(p.line, p.reason.split()[0]) for p in problems] == [(3, "label"), (4, "duplicate"), (5, "expected")]
    assert "labels.csv:3" in str(problems[0])


def test_missing_and_unlabeled_images_and_corrupt_tiles_are_reported(real_tile, tmp_path):
    img = tmp_path / "imgs"
    img.mkdir()
    for name in ("a", "b", "extra"):
        _save(real_tile, img / f"{name}.png")
    (img / "bad.tif").write_bytes(b"II*\x00garbage")
    (tmp_path / "labels.csv").write_text("id,label\na,0\nb,1\nmissing,1\nbad,0\n")
    src = open_source(img, labels_csv=tmp_path / "labels.csv")
    reasons = " | ".join(str(p) for p in src.problems)
    assert "missing" in reasons and "no image file" in reasons
    assert "extra.png" in reasons and "no label" in reasons
    x, y, ids = src.load_all()  # the corrupt tile is skipped, the batch survives
    assert ids == ["a", "b"] and x.shape[0] == 2
    assert any("bad.tif" in str(p) for p in src.problems)


def test_bad_layouts(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        open_source(tmp_path / "nope")
    (tmp_path / "labels.csv").write_text("name,class\n")
    with pytest.raises(DatasetError, match="header"):
        open_source(tmp_path, labels_csv=tmp_path / "labels.csv")
    x = tmp_path / "camelyonpatch_level_2_split_test_x.h5"
    with h5py.File(x, "w") as f:
        f["x"] = np.zeros((4, 64, 64, 3), np.uint8)
    with pytest.raises(DatasetError, match="expected \\(96, 96, 3\\)"):
        open_source(x)


def test_streamed_pipeline_skips_corrupt_tiles(real_tile, tmp_path):
    from model_training.training import pipeline

    img = tmp_path / "imgs"
    img.mkdir()
    rows = ["id,label"]
    for i in range(10):
        _save(real_tile, img / f"t{i}.png")
        rows.append(f"t{i},{i % 2}")
    (img / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rows.append("bad,1")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    src = open_source(img, labels_csv=tmp_path / "labels.csv")
    batches = list(pipeline.streamed(src, batch=4))
    assert sum(len(x) for x, _ in batches) == 10
    assert batches[0][0].dtype.name == "float32" and tuple(batches[0][1].shape) == (4, 1)
    assert [p.file for p in src.problems] == ["bad.png"]


def test_a_class_folder_dataset_with_one_class_and_an_overlong_path_get_clear_messages(data_root, tmp_path):
    from model_training.data.sources import class_folder_source

    (tmp_path / "0").mkdir()
    for p in sorted((data_root / "valid").glob("*.jpg"))[:3]:
        shutil.copy(p, tmp_path / "0" / p.name)
    source = open_source(tmp_path)
    assert len(source) == 3 and set(source.labels.tolist()) == {0}
    assert [p.reason for p in source.problems] == ["no 1/ folder: the dataset has no tumour tiles"]
    assert len(class_folder_source(tmp_path)) == 3
    with pytest.raises(DatasetError, match=r"File name too long") as refused:
        open_source(tmp_path / ("x" * 5000))
    assert len(str(refused.value)) < 300  # the name is shortened, not printed whole
