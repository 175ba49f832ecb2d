"""The demo slide: made only of the shipped CC0 example tiles, written by its command, and read by the slide
pipeline as the labels say (its metastasis found, its flags on it)."""
from __future__ import annotations

import pandas as pd
import pytest
import tifffile

from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.cli.demo_slide import main
from model_training.inference.predictor import Predictor
from model_training.slides.demo import build_demo_slide
from model_training.slides.run import run_slide


def test_the_demo_slide_is_written_and_its_metastasis_is_found(tmp_path, capsys):
    slide = tmp_path / "slides" / "demo.tiff"
    assert main(["--out", str(slide)]) == 0
    assert "90 tissue tiles, a metastasis of 5" in capsys.readouterr().out
    labels = pd.read_csv(slide.with_suffix(".csv"))
    assert len(labels) == 90 and labels.label.sum() == 5
    with tifffile.TiffFile(slide) as tif:
        assert tif.pages[0].shape == (14 * 96, 14 * 96, 3) and len(tif.series[0].levels) == 2

    result, _ = run_slide(Predictor.load(DEFAULT_BUNDLE, engine="auto"), slide, tmp_path / "out", progress=False)
    answer = result.summary["slide_level"]
    assert answer["decision"] == "metastasis" and answer["tiles_flagged"] >= 1
    tiles = result.frame.merge(labels, on=["x", "y", "width", "height"], how="left")
    assert tiles.label.notna().all()  # the model's grid is the slide's grid of example tiles
    flagged = tiles[tiles["flagged"].astype(bool)]
    assert (flagged.label == 1).all()  # every flag on the metastasis


def test_a_folder_without_the_example_tiles_it_needs_is_named(tmp_path):
    (tmp_path / "labels.csv").write_text("id,label,outcome_at_selection,p_at_selection,chosen_as\n")
    with pytest.raises(ValueError, match="names no 'clear TN' or no 'clear TP' tiles"):
        build_demo_slide(tmp_path / "demo.tiff", examples=tmp_path)
