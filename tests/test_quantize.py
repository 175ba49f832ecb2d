"""model.int8.onnx: made from model.onnx, checked against it on real tiles, verified on load, what the app uses."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_training.bundle.files import DEFAULT_BUNDLE, INT8_FILE, BundleError, sha256
from model_training.inference.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _copy(tmp_path: Path, *, int8: bool = True) -> Path:
    """The shipped bundle without its figures (and without its int8 copy when ``int8`` is False)."""
    copy = tmp_path / "b"
    ignore = ["figures"] + ([] if int8 else [INT8_FILE])
    shutil.copytree(DEFAULT_BUNDLE, copy, ignore=shutil.ignore_patterns(*ignore))
    if not int8:
        card = json.loads((copy / "model_card.json").read_text())
        del card["onnx_int8"]
        (copy / "model_card.json").write_text(json.dumps(card))
    return copy


def test_shipped_bundle_carries_a_checked_int8_copy():
    card = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())
    info = card["onnx_int8"]
    assert info["sha256"] == sha256(DEFAULT_BUNDLE / INT8_FILE)
    assert info["source_sha256"] == card["onnx"]["sha256"] == sha256(DEFAULT_BUNDLE / "model.onnx")
    check = info["check"]
    assert check["tiles"] == 2888 and check["tta"] and check["threshold"] == card["calibration"]["tta"]["threshold"]
    assert check["same_decision"] >= 0.99 and check["float"]["auc"] - check["int8"]["auc"] <= 0.005
    assert check["float"]["auc"] == pytest.approx(card["validation"]["tta"]["auc"], abs=1e-4)


def test_int8_scores_like_the_model_of_record_on_real_tiles(valid_tiles):
    """TTA scores within a tenth (the shipped copy's largest difference on all 2,888 validation tiles: 0.085),
    the same decisions on these tiles, and Grad-CAM unchanged (it runs on model.onnx). A wrongly quantized graph
    is off by several tenths or scores at random."""
    from sklearn.metrics import roc_auc_score

    x, y, _ = valid_tiles
    ref, fast = Predictor.load(DEFAULT_BUNDLE, engine="onnx"), Predictor.load(DEFAULT_BUNDLE, engine="auto")
    assert fast.engine.name == "onnx-int8"
    r, f = ref.predict(x, tta=True), fast.predict(x, tta=True)
    assert np.abs(r.p - f.p).max() < 0.1 and np.abs(r.views - f.views).max() < 0.15
    assert (r.decision == f.decision).mean() >= 0.98
    assert abs(roc_auc_score(y, r.p) - roc_auc_score(y, f.p)) < 0.01
    # the logit layer is not quantized: every tile has its own single-view score (a quantized logit gave 51
    # distinct values for these 64 tiles), within a few tenths of model.onnx's
    z, z_ref = fast.logits(x), ref.logits(x)
    assert len(np.unique(z)) == len(x) and np.abs(z - z_ref).max() < 0.75
    for tile in x[:4]:
        a, b = ref.explain_all(tile), fast.explain_all(tile)
        for method in a:
            np.testing.assert_array_equal(a[method], b[method])


def test_refuses_a_tampered_missing_or_stale_int8_copy(tmp_path):
    copy = _copy(tmp_path)
    with open(copy / INT8_FILE, "ab") as fh:
        fh.write(b"\0")
    for engine in ("onnx-int8", "auto"):
        with pytest.raises(BundleError, match=r"model\.int8\.onnx: sha256 .* does not match the model card"):
            Predictor.load(copy, engine=engine)
    assert Predictor.load(copy, engine="onnx", warm_up=False).engine.name == "onnx"  # model.onnx is fine
    card = json.loads((copy / "model_card.json").read_text())
    card["onnx_int8"]["source_sha256"] = "0" * 64
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="made from another model.onnx"):
        Predictor.load(copy, engine="auto")
    (copy / INT8_FILE).unlink()
    card["onnx_int8"]["source_sha256"] = card["onnx"]["sha256"]
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="lists model.int8.onnx, but the file is missing"):
        Predictor.load(copy, engine="auto")
    del card["onnx_int8"]
    (copy / "model_card.json").write_text(json.dumps(card))
    assert Predictor.load(copy, engine="auto", warm_up=False).engine.name == "onnx"  # no copy: float32 ONNX
    with pytest.raises(BundleError, match="no model.int8.onnx; make one with python -m model_training.cli.quantize"):
        Predictor.load(copy, engine="onnx-int8")


def test_a_cpu_that_scores_the_probe_tiles_differently_gets_model_onnx(tmp_path, caplog):
    """The card records the copy's logits for fixed noise tiles; where this CPU's int8 kernels give others
    (as an overflowing one would), "auto" scores with model.onnx and says why, and "onnx-int8" refuses."""
    from model_training.inference.engines import probe_tiles

    copy = _copy(tmp_path)
    card = json.loads((copy / "model_card.json").read_text())
    probe = card["onnx_int8"]["probe"]
    assert probe["tiles"] == len(probe["logits"]) == len(probe_tiles())
    assert Predictor.load(copy, engine="auto").engine.name == "onnx-int8"  # this CPU reproduces them
    probe["logits"][3] += 1.0
    (copy / "model_card.json").write_text(json.dumps(card))
    with caplog.at_level("WARNING", logger="pathreview"):
        assert Predictor.load(copy, engine="auto").engine.name == "onnx"
    assert "scores the probe tiles differently from the model card (largest logit difference 1" in caplog.text
    assert "scoring with model.onnx instead" in caplog.text
    with pytest.raises(BundleError, match="largest logit difference 1.*; score with engine onnx"):
        Predictor.load(copy, engine="onnx-int8")
    del card["onnx_int8"]["probe"]
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="the model card records no probe logits for it"):
        Predictor.load(copy, engine="onnx-int8")


def test_cli_quantizes_a_bundle_and_records_what_it_measured(tmp_path, data_root, valid_tiles):
    copy = _copy(tmp_path, int8=False)
    out = subprocess.run([sys.executable, "-m", "model_training.cli.quantize", str(copy), "--data", str(data_root),
                          "--calibration-tiles", "128", "--check-tiles", "400"],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr  # the quantizer's own logging stays out of the way
    assert "on 400 validation tiles with TTA the same decision as model.onnx for" in out.stdout
    info = json.loads((copy / "model_card.json").read_text())["onnx_int8"]
    assert info["sha256"] == sha256(copy / INT8_FILE) and info["calibration_tiles"] == 128
    assert info["check"]["tiles"] == 400 and info["check"]["same_decision"] >= 0.99
    fast = Predictor.load(copy, engine="auto")
    assert fast.engine.name == "onnx-int8"
    x, _, _ = valid_tiles
    assert len(np.unique(fast.logits(x))) == len(x)  # the head stays float32: no two tiles tie


def test_a_copy_that_disagrees_is_not_written(tmp_path, valid_tiles):
    """The agreement bar is enforced: with a bar no copy can meet, nothing is written and the card is unchanged."""
    from model_training.export.int8 import QuantizeError, write_int8

    copy = _copy(tmp_path, int8=False)
    before = (copy / "model_card.json").read_text()
    float_pred = Predictor.load(copy, engine="onnx")
    x, y, _ = valid_tiles
    with pytest.raises(QuantizeError, match=r"changes \d+ of 64 decisions .* so model.int8.onnx was not written"):
        write_int8(copy, float_pred, x, x, y, calibration_source="test", max_changed=-1.0)
    assert sorted(p.name for p in copy.iterdir() if "int8" in p.name) == []
    assert (copy / "model_card.json").read_text() == before


def test_the_agreement_bar_counts_decisions():
    """At most 1% of 400 is 4 changed decisions: 4 are kept, 5 are not (as a fraction, 1 - 0.99 is a hair above
    0.01, and 4 were refused); the AUC bar applies on its own."""
    from model_training.export.int8 import disagreement

    def check(changed: int, int8_auc: float = 0.90) -> dict:
        return {"tiles": 400, "decisions_changed": changed, "same_decision": 1 - changed / 400,
                "float": {"auc": 0.90}, "int8": {"auc": int8_auc}}

    assert disagreement(check(4)) is None
    assert disagreement(check(5, int8_auc=0.899)) == ("the int8 copy changes 5 of 400 decisions (1.2%; at most "
                                                      "1.0%) and its AUC differs by -0.0010 (at most -0.005)")
    assert disagreement(check(0, int8_auc=0.894)) is not None and disagreement(check(0, int8_auc=0.896)) is None


def test_cli_names_a_bundle_without_model_onnx(tmp_path, data_root):
    copy = _copy(tmp_path, int8=False)
    card = json.loads((copy / "model_card.json").read_text())
    del card["onnx"]
    (copy / "model_card.json").write_text(json.dumps(card))
    out = subprocess.run([sys.executable, "-m", "model_training.cli.quantize", str(copy), "--data", str(data_root)],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1
    assert "no model.onnx; export one" in out.stderr and "Traceback" not in out.stderr


def test_training_keeps_its_bundle_when_the_copy_cannot_be_made(tmp_path, valid_tiles, caplog):
    """After a finished training run a failing quantizer costs the int8 copy only, with one warning line."""
    from model_training.export.int8 import quantize_if_supported

    copy = _copy(tmp_path, int8=False)
    card = json.loads((copy / "model_card.json").read_text())
    x, y, _ = valid_tiles
    with caplog.at_level("WARNING", logger="pathreview"):
        assert quantize_if_supported(copy, card, x[:0], x, y, "no tiles") is None  # nothing to set ranges from
    assert "no model.int8.onnx written (the app will score model.onnx)" in caplog.text
    assert not list(copy.glob("*int8*"))
