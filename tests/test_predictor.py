"""The Predictor: verified loading, calibrated scores, TTA and Grad-CAM on real tiles."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from model_training.bundle.files import BundleError
from model_training.inference.predictor import Predictor, dihedral_views

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["keras", "onnx"])
def predictor(tiny_bundle, request) -> Predictor:
    """The tiny bundle scored by either engine: every test below must hold for both."""
    pred = Predictor.load(tiny_bundle, engine=request.param)
    assert pred.engine.name == request.param
    return pred


def test_refuses_a_tampered_model(tiny_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    with open(copy / "model.keras", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match="does not match the model card"):
        Predictor.load(copy)
    (copy / "model_card.json").unlink()
    with pytest.raises(BundleError, match="not a PathReview model bundle"):
        Predictor.load(copy)


def test_predict_matches_stored_validation_predictions(predictor, tiny_bundle, data_root):
    stored = pd.read_csv(tiny_bundle / "val_predictions.csv").head(32)
    from model_training.data.decode import read_tile

    tiles = np.stack([read_tile(data_root / "valid" / f"{i}.jpg") for i in stored["id"]])
    r = predictor.predict(tiles, tta=True)
    assert np.allclose(r.p, stored["p"], atol=1e-4)
    assert r.views.shape == (32, 8) and np.allclose(r.spread, r.views.std(axis=1))
    # a tile the quality gate did not assess gets no call; every other tile is called at the threshold
    called = r.p >= predictor.threshold(True)
    assert np.array_equal(r.decision, called & r.assessed)
    assert list(r.call) == [("tumour" if c else "normal") if ok else "not assessed" for c, ok in zip(called, r.assessed)]


def test_single_view_equals_keras_model(predictor, valid_tiles):
    from scipy.special import expit

    x = valid_tiles[0][:8]
    r = predictor.predict(x)
    raw = predictor.model.predict(x.astype("float32"), verbose=0)[:, 0]
    assert np.allclose(expit(r.logit), raw, atol=1e-5)  # same network, temperature aside
    assert np.allclose(predictor.logits(x.astype(np.float32)), r.logit, atol=1e-6)  # uint8 cast in-graph
    assert r.views is None and np.all(r.spread == 0)


def test_dihedral_views_are_distinct_and_complete(valid_tiles):
    t = valid_tiles[0][:1]
    v = dihedral_views(t)[0]
    assert v.shape == (8, 96, 96, 3) and np.array_equal(v[0], t[0])
    assert len({x.tobytes() for x in v}) == 8


def test_rejects_wrong_shapes(predictor):
    with pytest.raises(ValueError, match=r"\(N, 96, 96, 3\)"):
        predictor.predict(np.zeros((2, 64, 64, 3), np.uint8))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_gradcam_is_a_real_map(predictor, valid_tiles, method):
    x, y, _ = valid_tiles
    tile = x[np.flatnonzero(y == 1)[0]]
    cam = predictor.explain(tile, method)
    assert cam.shape == (96, 96) and cam.dtype == np.float32
    assert 0.0 <= cam.min() and cam.max() <= 1.0
    assert cam.max() > 0.5 and cam.std() > 0.01, "all-zero or flat map (saturated sigmoid?)"


def test_gradcam_matches_tf_keras_vis(predictor, valid_tiles):
    """The one compiled pass gives the maps tf-keras-vis computes eagerly, one method at a time.

    Float32 sums taken in another order (a compiled graph, or ONNX Runtime) move the last conv features by
    about 1e-5 and the min-max-normalised maps by up to a few 1e-5 (7e-6 with Keras, 2e-5 with ONNX Runtime
    on one freshly trained tiny bundle); a different method would differ by tenths. Hence 1e-4, as in
    test_onnx.py.
    """
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    from model_training.bundle.contract import LAST_CONV

    for cls, method in ((Gradcam, "gradcam"), (GradcamPlusPlus, "gradcam++")):
        reference = cls(predictor.logit_model, clone=False)
        for tile in valid_tiles[0][:4]:
            want = reference(lambda out: out[:, 0], tile[None].astype(np.float32), penultimate_layer=LAST_CONV,
                             seek_penultimate_conv_layer=False, normalize_cam=True)
            want = np.clip(np.nan_to_num(np.asarray(want, np.float32)[0]), 0.0, 1.0)
            assert np.allclose(predictor.explain(tile, method), want, atol=1e-4), method
    both = predictor.explain_all(valid_tiles[0][0])
    assert set(both) == {"gradcam", "gradcam++"}


def test_linear_zoom_is_the_zoom_tf_keras_vis_uses():
    from scipy.ndimage import zoom

    from model_training.inference.explain import linear_zoom

    rng = np.random.default_rng(0)
    for h, w in [(12, 12), (6, 6), (3, 5), (24, 24), (1, 1)]:
        cam = rng.random((1, h, w)) * 10
        np.testing.assert_allclose(linear_zoom(cam), zoom(cam, (1.0, 96 / h, 96 / w), order=1), rtol=0, atol=1e-12)


def test_unknown_explanation_method(predictor, valid_tiles):
    with pytest.raises(ValueError, match="choose from"):
        predictor.explain(valid_tiles[0][0], "lime")
