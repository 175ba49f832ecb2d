"""The example tiles in assets/examples: real CC0 PCam validation tiles, and the CLI that selects them."""
from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from model_training.bundle.files import DEFAULT_BUNDLE, VAL_PRED_FILE
from model_training.cli.examples import main
from model_training.data.decode import IMAGE_EXTS
from model_training.data.sources import open_source
from model_training.evaluation.examples import EXAMPLES_DIR, LABELS_FILE, MAX_EXAMPLES, command, quotas

REPO = Path(__file__).resolve().parent.parent


def tiles(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def test_shipped_examples_are_real_labelled_pcam_tiles():
    files = tiles(EXAMPLES_DIR)
    assert 8 <= len(files) <= MAX_EXAMPLES
    labels = pd.read_csv(EXAMPLES_DIR / LABELS_FILE, dtype={"id": str})
    assert sorted(labels["id"]) == [p.stem for p in files]
    assert set(labels["label"]) == {0, 1}
    assert set(labels["outcome_at_selection"]) == {"TP", "FP", "FN", "TN"}
    for p in files:
        with Image.open(p) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (96, 96)), p.name
            pixels = np.asarray(im)
        # PCam / Kaggle ids are the SHA-1 of the raw RGB pixels
        assert hashlib.sha1(pixels.tobytes()).hexdigest() == p.stem, p.name

    source = open_source(EXAMPLES_DIR)  # the project's own reader takes the folder as a labelled dataset
    assert not source.problems and len(source) == len(files)
    assert dict(zip(source.ids, source.labels.tolist())) == dict(zip(labels["id"], labels["label"]))

    readme = (EXAMPLES_DIR / "README.md").read_text()
    for fact in ("CC0 1.0", "2546921", "Veeling", "validation split", "python -m model_training.cli.examples"):
        assert fact in readme, fact


def test_shipped_examples_are_pcam_validation_tiles_byte_for_byte(data_root):
    valid = pd.read_csv(data_root / "valid_labels.csv", dtype={"id": str}).set_index("id")["label"]
    labels = pd.read_csv(EXAMPLES_DIR / LABELS_FILE, dtype={"id": str})
    for tid, label in zip(labels["id"], labels["label"]):
        assert valid.get(tid) == label, tid
        assert (EXAMPLES_DIR / f"{tid}.jpg").read_bytes() == (data_root / "valid" / f"{tid}.jpg").read_bytes()


def test_shipped_examples_are_what_their_readme_command_selects(data_root, tmp_path):
    cmd = command(DEFAULT_BUNDLE, EXAMPLES_DIR, MAX_EXAMPLES, 0, False)
    assert cmd in (EXAMPLES_DIR / "README.md").read_text()
    assert main(["--data", str(data_root), "--out", str(tmp_path), "--n", str(MAX_EXAMPLES), "--seed", "0"]) == 0
    fresh = (tmp_path / LABELS_FILE).read_text()
    assert fresh == (EXAMPLES_DIR / LABELS_FILE).read_text(), (
        f"assets/examples is stale for {DEFAULT_BUNDLE.name}; re-select with: {cmd}")


def test_selection_is_reproducible_and_shows_every_outcome(data_root, tmp_path, capsys):
    out = tmp_path / "examples"
    assert main(["--data", str(data_root), "--out", str(out), "--n", "8", "--seed", "3"]) == 0
    assert "wrote 8 tiles" in capsys.readouterr().out
    first = (out / LABELS_FILE).read_text()
    picked = pd.read_csv(out / LABELS_FILE, dtype={"id": str})
    assert len(tiles(out)) == 8 and set(picked["outcome_at_selection"]) == {"TP", "FP", "FN", "TN"}
    for tid in picked["id"]:
        assert (out / f"{tid}.jpg").read_bytes() == (data_root / "valid" / f"{tid}.jpg").read_bytes()
    vp = pd.read_csv(DEFAULT_BUNDLE / VAL_PRED_FILE, dtype={"id": str}).set_index("id")
    np.testing.assert_allclose(picked["p_at_selection"], vp.loc[picked["id"], "p"], atol=1e-6)

    assert main(["--data", str(data_root), "--out", str(out), "--n", "8", "--seed", "3"]) == 0
    assert (out / LABELS_FILE).read_text() == first
    assert main(["--data", str(data_root), "--out", str(out), "--n", "10", "--seed", "4"]) == 0
    assert len(tiles(out)) == 10  # the earlier pick's tiles are gone


def test_quotas_add_up():
    assert quotas(32) == {"near threshold": 4, "clear TP": 8, "clear TN": 8, "FP": 6, "FN": 6}
    assert all(sum(quotas(n).values()) == n for n in range(8, MAX_EXAMPLES + 1))


def test_selection_refuses_bad_input_with_the_file_and_reason(data_root, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(data_root), "--out", str(tmp_path / "x"), "--n", "40"])
    assert "--n 40" in capsys.readouterr().err

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    assert main(["--data", str(data_root), "--out", str(busy), "--n", "8"]) == 2
    err = capsys.readouterr().err
    assert str(busy) in err and "notes.txt" in err and (busy / "notes.txt").exists()

    assert main(["--data", str(data_root), "--bundle", str(tmp_path / "nobundle"), "--out",
                 str(tmp_path / "y")]) == 2
    assert "not a PathReview model bundle" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "z")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_docker_image_ships_the_examples():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY assets/ assets/" in dockerfile
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for path in ("assets", "assets/examples", f"assets/examples/{LABELS_FILE}", "assets/examples/README.md"):
        assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), path
