"""Whole slides: the reader, tissue mask, grid, scoring against the Predictor, outputs, resume (bad input is in
``test_slides_bad_input.py``).

Real inputs only: the Aperio slide in $PATHREVIEW_SLIDES and labelled slides built here from real validation
patches (``model_training.cli.labelled_slide``), scored with the shipped model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from model_training.bundle.contract import TILE, TILE_MPP
from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.cli.slides import main as slides_cli
from model_training.slides.grid import tile_grid
from model_training.slides.reader import open_slide
from model_training.slides.run import SlideSettings, run_slide
from model_training.slides.answer import SlideLevel
from model_training.slides.tissue import TissueParams, tissue_mask
from real_inputs import SVS

ROOT = Path(__file__).resolve().parent.parent
COLS, ROWS = 16, 12


@pytest.fixture(scope="session")
def labelled(patches, tmp_path_factory) -> dict[str, tuple[Path, pd.DataFrame]]:
    """The same real patches as a slide at their own resolution and as a 2x upsampled copy."""
    from model_training.slides.labelled import build

    tiles, labels, ids = patches
    folder = tmp_path_factory.mktemp("labelled")
    return {name: (folder / f"{name}.tiff", build(tiles, labels, ids, COLS, folder / f"{name}.tiff", up))
            for name, up in (("native", 1), ("up2", 2))}


# ---------------------------------------------------------------- reader


def test_reader_reads_the_aperio_slide_at_the_model_resolution(svs):
    with open_slide(svs, target_mpp=TILE_MPP) as s:
        assert s.dimensions == (2220, 2967) and s.vendor == "aperio"
        assert s.mpp == pytest.approx(0.499) and s.mpp_source == "slide metadata"
        assert s.scale_for(TILE_MPP) == pytest.approx(0.972 / 0.499)
        assert s.level_for(TILE_MPP).index == 0  # its only level, finer than the model's
        tile = s.read_scaled(1000, 1000, 187, 187, TILE_MPP, out=(TILE, TILE))
        assert tile.shape == (TILE, TILE, 3) and tile.dtype == np.uint8
        assert 60 < tile.mean() < 235  # tissue, not an empty read


def test_reader_picks_the_pyramid_level_at_the_model_resolution(labelled):
    with open_slide(labelled["up2"][0]) as s:
        assert s.mpp == pytest.approx(TILE_MPP / 2)
        assert [lv.downsample for lv in s.levels][:2] == [1.0, 2.0]
        assert s.level_for(TILE_MPP).index == 1  # 2x downsampled: exactly the model's scale
        assert s.level_for(TILE_MPP / 2).index == 0


def test_a_40x_and_a_20x_copy_give_tiles_of_one_physical_size(labelled, patches):
    with open_slide(labelled["native"][0]) as a, open_slide(labelled["up2"][0]) as b:
        ta = a.read_scaled(96, 192, 96, 96, TILE_MPP)
        tb = b.read_scaled(192, 384, 192, 192, TILE_MPP)
    assert ta.shape == tb.shape == (TILE, TILE, 3)
    assert np.array_equal(ta, patches[0][2 * COLS + 1])  # row 2, column 1, native: the stored pixels
    assert np.abs(ta.astype(int) - tb.astype(int)).mean() < 6  # resampled: the same picture


# ---------------------------------------------------------------- tissue and grid


def test_tissue_mask_finds_the_tissue_and_not_the_glass(svs):
    with open_slide(svs) as s:
        thumb, scale = s.thumbnail(1024)
    mask = tissue_mask(thumb, scale * 0.499)
    assert mask.shape == thumb.shape[:2]
    assert 0.1 < mask.mean() < 0.7
    sat_in = thumb[mask].std(axis=1).mean()
    sat_out = thumb[~mask].std(axis=1).mean()
    assert sat_in > 2 * sat_out  # tissue is coloured, glass is grey
    stricter = tissue_mask(thumb, scale * 0.499, TissueParams(max_saturation=0.4))
    assert stricter.sum() < mask.sum()  # the parameters do something


def test_grid_is_anchored_at_the_origin_and_its_stride_divides_the_tile():
    g = tile_grid((960, 480), 96.0, 96)
    assert (g.cols, g.rows, g.n) == (10, 5, 50) and g.xs.min() == 0 and g.ys.min() == 0
    assert set(np.unique(g.xs)) == set(range(0, 960, 96))
    half = tile_grid((960, 480), 96.0, 48)
    assert (half.cols, half.rows) == (19, 9)
    with pytest.raises(ValueError, match="divide"):
        tile_grid((960, 480), 96.0, 40)


# ---------------------------------------------------------------- scoring


def _joined(result, labels: pd.DataFrame) -> pd.DataFrame:
    return labels.merge(result.frame, on=["x", "y"], suffixes=("", "_tile"))


def test_slide_scores_match_the_predictor_on_the_same_patches(labelled, patches, pred, tmp_path):
    tiles, _, ids = patches
    ref = pd.Series(pred.predict(tiles).p, index=ids)
    native, _ = run_slide(pred, labelled["native"][0], tmp_path, progress=False)
    joined = _joined(native, labelled["native"][1])
    assert len(joined) >= 0.8 * COLS * ROWS  # the mask drops only the palest patches
    # exactly the same patches: single view, but for the second look (8 views) at the slide's top tiles
    one, eight = joined[joined.views == 1], joined[joined.views == 8]
    assert np.abs(one.p.to_numpy() - ref[one.id].to_numpy()).max() < 1e-5
    looked = SlideLevel.from_card(pred.card).second_look
    assert len(eight) == looked and eight.p.min() >= one.p.max() - 0.2  # the highest tiles, looked at again
    # the look's scores: 8 views through the card's look head, not the tile head's TTA
    assert pred.look_head is not None
    looks = pd.Series(pred.predict(tiles, look=True).p, index=ids)
    assert np.abs(eight.p.to_numpy() - looks[eight.id].to_numpy()).max() < 1e-5
    tta = pd.Series(pred.predict(tiles, tta=True).p, index=ids)
    assert np.abs(eight.p.to_numpy() - tta[eight.id].to_numpy()).max() > 1e-3

    up2, _ = run_slide(pred, labelled["up2"][0], tmp_path, progress=False)
    both = _joined(up2, labelled["up2"][1])
    diff = np.abs(both.p.to_numpy() - ref[both.id].to_numpy())
    assert diff.mean() < 0.05 and np.median(diff) < 0.03  # closely, after resampling
    assert (both.decision == np.where(ref[both.id] >= pred.threshold(False), "tumour", "normal")).mean() > 0.9

    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(joined.label, joined.p) > 0.85  # and the slide scores still tell tumour from normal


def test_outputs_and_a_qupath_shaped_geojson(svs, pred, tmp_path):
    result, paths = run_slide(pred, svs, tmp_path, SlideSettings(stride=48), progress=False)
    frame = pd.read_csv(paths["csv"])
    assert list(frame.columns) == ["x", "y", "width", "height", "p", "spread", "decision", "needs_review",
                                   "quality", "ood", "views", "flagged", "tile_call"]
    assert len(frame) == result.summary["tiles_scored"] > 50
    step = 96 * 0.972 / 0.499 / 2  # 96 px at 0.972 µm/px is 187 level-0 px; stride 48 is half of it
    assert (frame.width == 187).all()
    assert np.array_equal(frame.x, np.rint(np.rint(frame.x / step) * step))  # on the grid anchored at 0

    gj = json.loads(paths["geojson"].read_text())
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(frame)
    for feat, row in zip(gj["features"], frame.itertuples()):
        ring = feat["geometry"]["coordinates"][0]
        assert feat["type"] == "Feature" and feat["geometry"]["type"] == "Polygon"
        assert ring[0] == ring[-1] and len(ring) == 5
        xs, ys = [pt[0] for pt in ring], [pt[1] for pt in ring]
        assert 0 <= min(xs) and max(xs) <= 2220 and 0 <= min(ys) and max(ys) <= 2967
        assert (min(xs), min(ys)) == (row.x, row.y)
        props = feat["properties"]
        assert props["objectType"] == "tile" and props["measurements"]["p_tumour"] == pytest.approx(row.p)
        assert props["measurements"]["ood"] == pytest.approx(row.ood) and props["quality"] == row.quality
        named = {"tumour": "Tumor", "not assessed": "Ignore*"}.get(row.decision)
        assert props.get("classification", {}).get("name") == named
    assert len({f["id"] for f in gj["features"]}) == len(frame)

    png = Image.open(paths["heatmap"])
    key = 56  # the colour key below the map
    # the overview at 4 µm per pixel (this slide is 1.48 mm tall), in the slide's aspect
    assert png.size[1] - key == np.ceil(2967 * 0.499 / 4) and png.mode == "RGB"
    assert png.size[0] == 560  # widened to hold its key in full
    from model_training.slides.outputs import colourize

    bar = np.asarray(png)[png.size[1] - key + 6 + 7]  # a row through the colour scale: 0 on the left, 1 on the right
    low, high = (tuple(colourize(np.array([v]))[0]) for v in (0.0, 1.0))
    assert tuple(bar[76]) == low and tuple(bar[560 - 27]) == high
    s = json.loads(paths["summary"].read_text())
    assert s["model_sha256"] == pred.sha256 and s["tissue_area_mm2"] > 0.1
    assert s["tiles_flagged"] == int((frame.decision == "tumour").sum()) and len(s["top_tiles"]) == 10
    # the files call tumour only what the slide-level answer flags (none here, below); the tile threshold's calls
    # stay beside them
    assert s["tiles_above_threshold"] == int((frame.tile_call == "tumour").sum()) > s["tiles_flagged"] == 0
    assert ((frame.decision == "not assessed") == (frame.tile_call == "not assessed")).all()
    # skin, not lymph node: the gate keeps most of it from being answered, and the slide is called unlike
    assert (frame.decision == "not assessed").mean() > 0.5
    assert (frame.quality != "ok").sum() == s["quality"]["not_assessed"] == (frame.decision == "not assessed").sum()
    assert not frame[frame.decision == "not assessed"].needs_review.any()
    assert s["quality"]["ood_share"] >= 0.5 and "does not look like the lymph-node" in s["quality"]["warning"]
    assert s["timings"]["tiles_per_s"] > 0
    level = s["slide_level"]  # the slide-level answer: a score, but no decision and no flags on a slide so unlike
    assert 0 <= level["slide_score"] <= 1 and level["decision"] is None
    assert level["withheld"] == s["quality"]["warning"] and level["tiles_flagged"] == 0 and not frame.flagged.any()
    assert level["size_shift"] >= 0 and level["tile_flag_p"] >= level["parameters"]["tile_flag_p"]


def test_cli_resumes_skips_bad_slides_and_rescores_on_new_settings(svs, tmp_path, capsys):
    bad = tmp_path / "notes.svs"
    bad.write_text("not a slide")
    out = tmp_path / "out"
    assert slides_cli([str(bad), str(svs), "--out", str(out)]) == 1
    said = capsys.readouterr()
    assert "notes.svs: is not a slide format OpenSlide reads" in said.err
    # skin, not lymph node: its score, no slide answer, and why
    assert f"{SVS}: " in said.out and " (no slide answer), 0 tile(s) flagged" in said.out
    assert "  warning: This slide does not look like the lymph-node" in said.out
    summary = out / f"{SVS}.summary.json"
    first = summary.stat().st_mtime_ns
    assert slides_cli([str(svs), "--out", str(out)]) == 0
    assert "already scored with this model and settings, skipped" in capsys.readouterr().out
    assert summary.stat().st_mtime_ns == first
    # outputs of an older file layout (no "files" in their settings) are written again, not skipped
    old_layout = json.loads(summary.read_text())
    del old_layout["settings"]["files"]
    summary.write_text(json.dumps(old_layout))
    assert slides_cli([str(svs), "--out", str(out)]) == 0
    assert "skipped" not in capsys.readouterr().out and json.loads(summary.read_text())["settings"]["files"] == 2
    first = summary.stat().st_mtime_ns
    assert slides_cli([str(svs), "--out", str(out), "--stride", "48", "--engine", "keras"]) == 0
    assert summary.stat().st_mtime_ns != first
    assert json.loads(summary.read_text())["stride"] == 48
    # the int8 copy (the default) is another scorer: the slide is scored again, its tiles as the model of record's
    keras_tiles = pd.read_csv(out / f"{SVS}.tiles.csv")
    assert slides_cli([str(svs), "--out", str(out), "--stride", "48"]) == 0
    assert json.loads(summary.read_text())["settings"]["engine"] == "onnx-int8"
    int8_tiles = pd.read_csv(out / f"{SVS}.tiles.csv")
    assert len(int8_tiles) == len(keras_tiles) > 100
    assert (int8_tiles["p"] - keras_tiles["p"]).abs().max() < 0.1
    assert (int8_tiles["decision"] == keras_tiles["decision"]).mean() >= 0.98


def test_an_interrupted_scoring_run_continues_where_it_stopped(labelled, pred):
    from model_training.slides.scoring import Progress, overview, score_slide

    calls: list[int] = []

    def predict(tiles, tta):
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a page rerun or a closed browser does mid-run
        calls.append(len(tiles))
        return pred.predict(tiles, tta=tta)

    with open_slide(labelled["native"][0], target_mpp=TILE_MPP) as slide:
        ov = overview(slide, TILE_MPP)
        full = score_slide(slide, lambda t, a: pred.predict(t, tta=a), TILE_MPP, ov=ov, batch=32)
        progress = Progress.empty(ov.grid.n)
        with pytest.raises(KeyboardInterrupt):
            score_slide(slide, predict, TILE_MPP, ov=ov, batch=32, resume=progress)
        assert progress.scored.sum() == sum(calls) == 64
        calls.clear()
        resumed = score_slide(slide, lambda t, a: calls.append(len(t)) or pred.predict(t, tta=a), TILE_MPP,
                              ov=ov, batch=32, resume=progress)
    assert sum(calls) == ov.grid.n - 64  # only the tiles still missing
    assert np.abs(resumed.frame.p.to_numpy() - full.frame.p.to_numpy()).max() < 1e-5
    assert (resumed.frame.decision == full.frame.decision).all()


def test_the_slides_command_loads_no_tensorflow_where_onnx_scores(svs, tmp_path):
    """TensorFlow takes seconds to import and only the Keras engine needs it: the default (int8) run of the
    command must not pay for it, while ``--engine keras`` still gets it."""
    import subprocess
    import sys

    from model_training.inference.predictor import scores_with_keras

    code = ("import sys; from model_training.cli.slides import main; rc = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(svs), "--out", str(tmp_path / "o")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False" and (tmp_path / "o" / f"{SVS}.summary.json").is_file()
    shipped = DEFAULT_BUNDLE
    assert not scores_with_keras(shipped, "auto") and not scores_with_keras(shipped, "onnx")
    assert scores_with_keras(shipped, "keras")
    # a bundle with no ONNX copy scores with Keras under "auto"; an unreadable one is left to the load to refuse
    card = json.loads((shipped / "model_card.json").read_text())
    keras_only = tmp_path / "keras-only"
    keras_only.mkdir()
    (keras_only / "model_card.json").write_text(json.dumps({k: v for k, v in card.items() if k != "onnx"}))
    assert scores_with_keras(keras_only, "auto")
    assert not scores_with_keras(tmp_path / "missing", "auto")


def test_the_short_command_name_is_the_same_command(svs, tmp_path):
    """``python -m model_training.slides`` (the name lab scripts use) runs the slides command itself."""
    import subprocess
    import sys

    outs = {}
    for name in ("model_training.slides", "model_training.cli.slides"):
        out = tmp_path / name
        run = subprocess.run([sys.executable, "-m", name, str(svs), "--out", str(out)], capture_output=True,
                             text=True, timeout=300, cwd=ROOT)
        assert run.returncode == 0, run.stderr
        assert f"{SVS}: " in run.stdout and (out / "cases.csv").is_file()
        outs[name] = pd.read_csv(out / f"{SVS}.tiles.csv")
    pd.testing.assert_frame_equal(*outs.values())
