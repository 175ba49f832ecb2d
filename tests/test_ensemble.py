"""Ensembles: one flat model whose logit is the members' mean, scored and explained like any bundle."""
from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from model_training.bundle.contract import LAST_CONV, LOGIT, OUTPUT
from model_training.bundle.files import MODEL_FILE, sha256, write_card
from model_training.cli.ensemble import main
from model_training.inference.predictor import Predictor
from model_training.training.architectures import build_model
from model_training.training.ensemble import build_ensemble

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def second_bundle(tiny_bundle, tmp_path_factory):
    """A second member: the tiny model with perturbed weights, so its scores differ from the first."""
    model = keras.saving.load_model(tiny_bundle / MODEL_FILE, compile=False)
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) * (np.std(w) + 1e-3)
                       for w in model.get_weights()])
    out = tmp_path_factory.mktemp("member") / "tiny-b"
    out.mkdir()
    model.save(out / MODEL_FILE)
    write_card(out, {"name": "tiny-b", "sha256": sha256(out / MODEL_FILE), "params": model.count_params()})
    return out


def _logits(model, x):
    return Predictor(model, {"sha256": ""}, ".").logits(x)


def test_ensemble_logit_is_the_members_mean(tiny_bundle, second_bundle, valid_tiles, tmp_path):
    members = [keras.saving.load_model(b / MODEL_FILE, compile=False) for b in (tiny_bundle, second_bundle)]
    ens = build_ensemble(members)
    x = valid_tiles[0][:32]
    za, zb = (_logits(m, x) for m in members)
    assert np.abs(za - zb).max() > 1e-3, "the members must differ for this test to mean anything"
    assert np.allclose(_logits(ens, x), (za + zb) / 2, atol=1e-4)
    # the single-model contract holds: flat, one last_conv / logit / p_tumour, raw pixels in
    names = [layer.name for layer in ens.layers]
    assert all(names.count(n) == 1 for n in (LAST_CONV, LOGIT, OUTPUT))
    assert not any(isinstance(layer, keras.Model) for layer in ens.layers)
    ens.save(tmp_path / MODEL_FILE)
    again = keras.saving.load_model(tmp_path / MODEL_FILE, compile=False, safe_mode=True)
    assert np.allclose(_logits(again, x), _logits(ens, x), atol=1e-5)


def test_members_of_different_resolution_are_refused():
    with pytest.raises(ValueError, match="feature maps differ in size"):
        build_ensemble([build_model("pathcnn-small"), build_model("mobilenetv2")])


def test_ensemble_cli_writes_a_loadable_bundle(tiny_bundle, second_bundle, data_root, valid_tiles, tmp_path):
    out = tmp_path / "ens"
    assert main(["--members", str(tiny_bundle), str(second_bundle), "--data", str(data_root),
                 "--val-limit", "300", "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["command"].startswith("python -m model_training.cli.ensemble --members ")
    assert [m["sha256"] for m in card["members"]] == [json.loads((b / "model_card.json").read_text())["sha256"]
                                                      for b in (tiny_bundle, second_bundle)]
    assert card["validation"]["tta"]["n"] == 300 and card["validation"]["tta"]["at_threshold"]["sensitivity"] >= 0.95
    assert set(pd.read_csv(out / "history.csv")["member"]) == {"tiny"}  # only the trained member has a history
    pred = Predictor.load(out)
    r = pred.predict(valid_tiles[0][:4], tta=True)
    assert r.p.shape == (4,) and np.all((r.p >= 0) & (r.p <= 1))
    # Grad-CAM of a GAP head, before its ReLU, sums over the map to the logit minus the Dense bias: a tile whose
    # logit is above the bias has positive evidence somewhere, so its map cannot be all zero; below it, weak
    # tiny members may leave none (which made a plain "max > 0" flaky)
    z = pred.logits(valid_tiles[0])
    bias = float(pred.model.get_layer("logit").bias.numpy()[0])
    top = int(np.argmax(z))
    cam = pred.explain(valid_tiles[0][top])
    assert cam.shape == (96, 96) and 0 <= cam.min() and cam.max() <= 1
    if z[top] > bias + 1e-3:
        assert cam.max() > 0
