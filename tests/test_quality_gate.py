"""The quality gate on fixed real tiles: each verdict where it belongs, and nowhere it does not."""
from __future__ import annotations

import multiprocessing as mp
import shutil

import numpy as np
import pandas as pd
import pytest
from real_inputs import SVS

from model_training.bundle.files import DEFAULT_BUNDLE, GATE_FILE, BundleError, read_card
from model_training.data.sources import open_source
from model_training.evaluation.derived import blurred, pen_marked
from model_training.evaluation.scoring import score_to_csv
from model_training.inference.gate import Gate, load_gate
from model_training.inference.predictor import Predictor

BUNDLE = DEFAULT_BUNDLE


@pytest.fixture(scope="module")
def pred() -> Predictor:
    return Predictor.load(BUNDLE, engine="auto")


@pytest.fixture(scope="module")
def held(data_root) -> tuple[np.ndarray, np.ndarray]:
    """The validation tiles the gate's limits were not fitted on (odd positions: 1,444 tiles)."""
    source = open_source(data_root, "valid")
    return source.subset(range(1, len(source), 2)).load_all()[:2]


def test_the_shipped_bundle_lists_its_gate_with_a_checked_hash(pred):
    card = read_card(BUNDLE)
    assert card["quality_gate"]["file"] == GATE_FILE and pred.gate is not None
    assert set(pred.gate.limits) == {"sharpness_min", "ink_max", "dark_max", "features_max", "colour_max"}


def test_clean_lymph_node_tiles_are_answered_and_keep_their_auc(pred, held):
    from sklearn.metrics import roc_auc_score

    x, y = held
    r = pred.predict(x)
    assert r.assessed.mean() >= 0.94, pd.Series(r.quality).value_counts().to_dict()
    assert roc_auc_score(y[r.assessed], r.p[r.assessed]) >= roc_auc_score(y, r.p) - 0.01


def test_out_of_focus_tiles_are_called_blur(pred, held):
    r = pred.predict(blurred(held[0][:150]))
    assert (r.quality == "blur").mean() >= 0.9
    assert not r.decision[r.quality != "ok"].any() and set(r.call[r.quality != "ok"]) == {"not assessed"}


def test_pen_marked_tiles_are_not_assessed(pred, held):
    r = pred.predict(pen_marked(held[0][:150], seed=5))
    assert (~r.assessed).mean() >= 0.8
    assert (r.quality == "pen").sum() >= 30  # the ink check itself, not only the distance, finds them


def test_glass_is_background_and_a_folded_double_layer_is_not_assessed(pred, held):
    glass = np.full((4, 96, 96, 3), 240, np.uint8)
    glass[:, :, :, 1] = 238
    assert list(pred.predict(glass).quality) == ["background"] * 4
    # tissue folded over itself: the light passes through two layers, so the transmitted fractions multiply
    x = held[0][:100].astype(np.float32) / 255
    folded = (255 * x * x).astype(np.uint8)
    r = pred.predict(folded)
    assert (~r.assessed).mean() >= 0.7 and (r.quality == "fold").sum() >= 20


def test_tissue_of_another_organ_is_mostly_out_of_distribution(pred, slides_root):
    from model_training.training.gate import slide_tiles

    skin = slide_tiles([slides_root / SVS], stride=96)
    r = pred.predict(skin)
    assert len(skin) > 60 and (r.quality == "out-of-distribution").mean() >= 0.6
    assert np.all(r.ood[r.quality == "out-of-distribution"] > 1.0)


def test_the_gate_survives_a_round_trip_and_refuses_a_changed_file(pred, tmp_path, held):
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE, copy)
    again = load_gate(copy, read_card(copy))
    x = held[0][:32]
    _, features = pred.logits_and_features(x)
    a, b = pred.gate.assess(x, features), again.assess(x, features)
    assert list(a.quality) == list(b.quality) and np.array_equal(a.ood, b.ood)
    Gate.read(copy / GATE_FILE).save(copy / GATE_FILE)  # same arrays, same bytes: still accepted
    load_gate(copy, read_card(copy))
    limits = dict(pred.gate.limits, colour_max=1e9)
    Gate(pred.gate.features, pred.gate.colour, limits).save(copy / GATE_FILE)
    with pytest.raises(BundleError, match="sha256"):
        Predictor.load(copy, warm_up=False, engine="onnx")


def test_the_score_csv_says_not_assessed_with_the_reason(pred, held, tmp_path):
    from PIL import Image

    folder = tmp_path / "tiles"
    folder.mkdir()
    x = held[0]
    tiles = {"clean.png": x[0], "sharp-again.png": x[1], "blurred.png": blurred(x[2:3])[0]}
    for name, tile in tiles.items():
        Image.fromarray(tile).save(folder / name)
    out = tmp_path / "scores.csv"
    score_to_csv(pred, open_source(folder), out, progress=False)
    df = pd.read_csv(out).set_index("id")
    assert {"quality", "ood"} <= set(df.columns)
    row = df.loc[[i for i in df.index if "blurred" in i][0]]
    assert row["quality"] == "blur" and pd.isna(row["decision"])
    assert df["decision"].dropna().isin([0, 1]).all()


_FORKED: Predictor | None = None  # what a forked child inherits


def _verdicts_in_child(tiles: np.ndarray) -> list[str]:
    return [str(q) for q in _FORKED.predict(tiles).quality]


def test_a_forked_process_scores_with_the_predictor_it_inherits(pred, held):
    """The gate's measures run in a thread pool beside the engine; a child forked after the parent has used it
    (Linux's default multiprocessing) must get a pool of its own, not a copy whose thread is gone."""
    global _FORKED
    tiles = held[0][:64]
    expected = [str(q) for q in pred.predict(tiles).quality]  # the parent's pool has run a task
    _FORKED = pred
    with mp.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_verdicts_in_child, (tiles,)).get(timeout=30) == expected
