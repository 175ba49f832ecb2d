"""The hard-negative head refit: a new last layer fitted on the training split, the backbone untouched."""
import json

import numpy as np
import pytest

from model_training.training.head_refit import (HeadRefitError, HeadRefitSettings, check_head_reads_features,
                                                 fit_head, sample_weights)


def test_hard_negatives_are_the_negatives_the_model_calls_tumour():
    y = np.array([0, 0, 1, 1, 0])
    z = np.array([-2.0, 0.5, 3.0, -1.0, 4.0])
    w = sample_weights(y, z, HeadRefitSettings(hard_negative_weight=3.0))
    assert w.tolist() == [1, 3, 1, 1, 3]


def test_the_fitted_head_is_the_weighted_regression_on_raw_features():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    f = rng.gamma(2.0, 0.2, (400, 12))
    y = (f[:, 0] + rng.normal(0, 0.2, 400) > 0.4).astype(int)
    w = sample_weights(y, f[:, 0] - 0.4, HeadRefitSettings())
    assert (w > 1).any()
    kernel, bias = fit_head(f, y, w, 0.3)
    ref = LogisticRegression(C=0.3, max_iter=20000).fit(f, y, sample_weight=w)
    assert np.allclose(f @ kernel + bias, ref.decision_function(f), atol=1e-8)
    plain = LogisticRegression(C=0.3, max_iter=20000).fit(f, y)
    assert not np.allclose(kernel, plain.coef_[0], atol=1e-3)


def test_a_head_that_does_not_read_the_features_is_refused():
    class Dense:
        def get_weights(self):
            return [np.ones((3, 1)), np.zeros(1)]

    class Model:
        def get_layer(self, name):
            return Dense()

    f = np.arange(12.0).reshape(4, 3)
    check_head_reads_features(Model(), f.sum(axis=1), f)
    with pytest.raises(HeadRefitError, match="not the input of the model's 'logit' layer"):
        check_head_reads_features(Model(), f.sum(axis=1) + 1.0, f)


@pytest.mark.slow
def test_refit_head_writes_a_bundle_with_a_new_head_on_the_same_backbone(tiny_bundle, data_root, valid_tiles,
                                                                            tmp_path, capsys, monkeypatch):
    from model_training.bundle.contract import LOGIT
    from model_training.bundle.files import sha256
    from model_training.cli.refit_head import main
    from model_training.data.subsets import load_split
    from model_training.export.int8 import calibration_tiles
    from model_training.inference.predictor import Predictor
    from model_training.training import finish
    from model_training.training.head_refit import pooled_views

    # Record what the int8 copy is made from; whether a briefly trained model's copy meets the agreement bar
    # is test_quantize's business.
    quantized = []
    monkeypatch.setattr(finish, "quantize_if_supported",
                        lambda bundle, card, calibration, tiles, labels, source: quantized.append((calibration, source)))
    out = tmp_path / "refit"
    assert main(["--bundle", str(tiny_bundle), "--data", str(data_root), "--limit", "600", "--val-limit", "300",
                 "--out", str(out)]) == 0
    old = json.loads((tiny_bundle / "model_card.json").read_text())
    new = json.loads((out / "model_card.json").read_text())
    assert new["sha256"] == sha256(out / "model.keras") != old["sha256"]
    assert new["training"] == old["training"] and new["head_refit"]["source_sha256"] == old["sha256"]
    assert new["head_refit"]["command"].startswith("python -m model_training.cli.refit_head --bundle ")
    assert new["validation"]["tta"]["n"] == 300 and new["validation"]["tta"]["at_threshold"]["sensitivity"] >= 0.95
    # the int8 copy took its ranges from the training tiles, the quantize command's draw, not from validation
    (ranges, source), = quantized
    assert source == f"512 tiles of Kaggle layout {data_root / 'train'}"
    assert np.array_equal(ranges, calibration_tiles(load_split(str(data_root), "train", 600, 0, True)[0])[0])

    a, b = Predictor.load(tiny_bundle), Predictor.load(out)
    x = valid_tiles[0][:16]
    za, fa = a.logits_and_features(x)
    zb, fb = b.logits_and_features(x)
    assert np.allclose(fa, fb, atol=1e-5) and not np.allclose(za, zb, atol=1e-2)  # same backbone, new head

    # the head is the weighted regression on the same 600 training tiles; without the weights it would differ
    _, (tx, ty, _) = load_split(str(data_root), "train", 600, 0, False)
    z, f = pooled_views(a, tx)
    w = sample_weights(ty, z, HeadRefitSettings())
    assert new["head_refit"]["hard_negatives"] == int((w > 1).sum()) > 0
    kernel, bias = b.model.get_layer(LOGIT).get_weights()
    want, want_bias = fit_head(f, ty, w, 0.3)
    assert np.allclose(kernel[:, 0], want, rtol=1e-4, atol=1e-5) and np.isclose(bias[0], want_bias, atol=1e-4)
    unweighted, _ = fit_head(f, ty, np.ones(len(ty)), 0.3)
    assert not np.allclose(kernel[:, 0], unweighted, rtol=1e-3, atol=1e-4)

    capsys.readouterr()
    assert main(["--bundle", str(out), "--data", str(data_root), "--out", str(out)]) == 1
    assert "must be a new directory" in capsys.readouterr().err
