"""The Model card page and how the app loads a bundle, driven through ``AppTest``: hashes verified, the int8
copy and the engine setting, the quality gate, calibration, and a missing, tampered or older bundle."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from page_helpers import drop, errors, upload

from model_training.bundle.files import sha256 as file_sha256
from model_training.data.decode import read_tile

pytestmark = pytest.mark.slow  # needs the tiny bundle (trained once per session)


def test_model_card_shows_the_verified_sha256(app, tiny_bundle):
    at = app("views/model_card.py")
    assert not at.exception and not errors(at)
    sha = file_sha256(tiny_bundle / "model.keras")
    assert sha in [c.value for c in at.code]
    assert any("verified when loaded" in md.value for md in at.markdown)
    # the app scores with the bundle's ONNX export, whose own hash is shown too
    assert file_sha256(tiny_bundle / "model.onnx") in [c.value for c in at.code]
    assert any("Scored by **ONNX Runtime" in md.value for md in at.markdown)


def test_model_card_shows_the_int8_copy_and_the_engine_setting_chooses(app, monkeypatch):
    """The shipped bundle is scored by its int8 copy, which the card page describes with its check;
    PATHREVIEW_ENGINE=onnx scores with the float32 model.onnx instead, and a wrong value is named."""
    from app.runtime import model_loader
    from model_training.bundle.files import DEFAULT_BUNDLE

    card = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())
    monkeypatch.setenv("PATHREVIEW_MODEL", str(DEFAULT_BUNDLE))
    at = app("views/model_card.py")
    assert not at.exception and not errors(at)
    assert any("Scored by **ONNX Runtime, int8 copy**" in md.value for md in at.markdown)
    text = next(md.value for md in at.markdown if "is an int8 copy of" in md.value)
    assert f"the same decision for **{card['onnx_int8']['check']['same_decision']:.2%}**" in text
    assert card["onnx_int8"]["sha256"] in [c.value for c in at.code]
    # the slide-level operating point, with the figures of the case slides it was fitted and tested on
    assert any(f"Threshold **{card['slide_level']['threshold']:.4f}**" in md.value for md in at.markdown)
    slide_table = next(d.value for d in at.dataframe if "case set" in d.value.columns)
    folds = card["slide_level"]["test_set_by_fold"]
    assert slide_table["auc"].tolist() == [str(card["slide_level"][s]["auc"]) for s in ("fit_set", "test_set")] + [
        str(f["auc"]) for f in folds.values()]
    assert slide_table["case set"].tolist()[2:] == list(folds) and len(folds) == 2
    # the size rule, and what it does on larger slides made of the held-out ones
    assert any("**Size rule.**" in md.value and f"above {card['slide_level']['parameters']['reference_tiles']}"
               in md.value for md in at.markdown)
    # the second look's head, with its validation AUC beside the tile head's
    look = next(md.value for md in at.markdown if md.value.startswith("**Second look.**"))
    assert f"Validation AUC {card['look_head']['validation']['auc']:.4f}" in look and "C = 100," in look
    assert f"same call on {card['look_head']['int8_check']['same_decision']:.2%}" in look
    assert card["look_head"]["command"] in [c.value for c in at.code]
    # when there is no slide answer
    assert any(md.value.startswith("**No answer.**") and "more than 25% of its tissue tiles" in md.value
               for md in at.markdown)
    sizes = next(d.value for d in at.dataframe if "slides laid side by side" in d.value.columns)
    assert sizes["slides laid side by side"].tolist() == [r["factor"] for r in card["slide_level"]["size_check"]]
    assert sizes["normal flags, median (without)"].tolist() == [
        r["without"]["normal_flags_median"] for r in card["slide_level"]["size_check"]]
    monkeypatch.setenv("PATHREVIEW_ENGINE", "onnx")
    assert model_loader.engine_setting() == "onnx"
    at.run()
    assert any("Scored by **ONNX Runtime**." in md.value for md in at.markdown)
    assert any("This server scores with `model.onnx` instead" in c.value for c in at.caption)
    monkeypatch.setenv("PATHREVIEW_ENGINE", " ")
    assert model_loader.engine_setting() == "auto"
    monkeypatch.setenv("PATHREVIEW_ENGINE", "fastest")
    with pytest.raises(ValueError, match="PATHREVIEW_ENGINE='fastest' is not one of keras, onnx, onnx-int8, auto"):
        model_loader.engine_setting()


def test_model_card_shows_the_quality_gate_and_its_figures(app, monkeypatch):
    from model_training.bundle.files import DEFAULT_BUNDLE

    gate = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())["quality_gate"]
    monkeypatch.setenv("PATHREVIEW_MODEL", str(DEFAULT_BUNDLE))
    at = app("views/model_card.py")
    assert not at.exception and not errors(at)
    assert "Quality gate: when the model does not answer" in [h.value for h in at.subheader]
    assert gate["sha256"] in [c.value for c in at.code]
    table = next(d.value for d in at.dataframe if "assessed (ok)" in d.value.columns)
    rows = table.set_index("set")
    held = gate["figures"]["held_out"]
    assert rows.loc["held-out validation tiles (lymph node)", "assessed (ok)"] == f"{held['ok']:.1%}"
    assert rows.loc["the same tiles out of focus (blur 2.5 px)", "not assessed"] == \
        f"{gate['figures']['blur_2.5px']['flagged']:.1%}"
    assert any(f"{held['auc_ok']:.4f} on the tiles the gate lets through" in m.value for m in at.markdown)


def test_model_card_shows_calibration_and_recalibration(app, monkeypatch):
    from model_training.bundle.files import DEFAULT_BUNDLE

    monkeypatch.setenv("PATHREVIEW_MODEL", str(DEFAULT_BUNDLE))
    at = app("views/model_card.py")
    assert not at.exception and not errors(at)
    card = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())
    tables = [df.value for df in at.dataframe]
    cal = next(t for t in tables if "bias" in t.columns)
    assert cal.set_index("scoring").loc["tta", "bias"] == f"{card['calibration']['tta']['bias']:.3f}"
    nll = next(t for t in tables if "platt_5fold" in t.columns)
    assert set(nll["scoring"]) == {"tta", "single"}
    assert card["training"]["command"] in [c.value for c in at.code]
    # the last layer refitted after training: the command and what it was fitted on
    assert card["head_refit"]["command"] in [c.value for c in at.code]
    assert any("Last layer refitted after training" in md.value for md in at.markdown)
    refit = next(t for t in tables if "field" in t.columns and "hard_negatives" in t["field"].tolist())
    refit = refit.set_index("field")["value"]
    assert refit["hard_negatives"] == f'{card["head_refit"]["hard_negatives"]:,}'


def test_model_card_says_validation_is_optimistic_and_how_to_recalibrate(app, monkeypatch):
    from model_training.bundle.files import DEFAULT_BUNDLE

    monkeypatch.setenv("PATHREVIEW_MODEL", str(DEFAULT_BUNDLE))
    at = app("views/model_card.py")
    assert not at.exception and not errors(at)
    assert any("optimistic for new slides" in w.value for w in at.warning)
    recipe = [c.value for c in at.code if "model_training.cli.recalibrate" in c.value and "your/labelled" in c.value]
    assert recipe and f"--bundle {DEFAULT_BUNDLE}" in recipe[0]
    metrics = next(df.value for df in at.dataframe if "sensitivity 95% CI" in df.value.columns)
    assert "colour_shifted_tta" in set(metrics["scoring"])
    perf = app("views/performance.py")
    assert not perf.exception


def test_missing_bundle_is_a_message_not_a_traceback(app, monkeypatch, tmp_path):
    monkeypatch.setenv("PATHREVIEW_MODEL", str(tmp_path / "no-such-bundle"))
    at = app()
    assert not at.exception
    assert any("not a PathReview model bundle" in e for e in errors(at))
    at.switch_page("views/model_card.py").run()
    assert not at.exception and errors(at)


def test_tampered_model_is_refused_with_a_message(app, monkeypatch, tmp_path, tiny_bundle):
    bad = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, bad, ignore=shutil.ignore_patterns("checkpoints", "figures"))
    card = json.loads((bad / "model_card.json").read_text())
    card["sha256"] = "0" * 64
    (bad / "model_card.json").write_text(json.dumps(card))
    monkeypatch.setenv("PATHREVIEW_MODEL", str(bad))
    at = app()
    assert not at.exception
    assert any("does not match the model card" in e for e in errors(at))


def test_a_bundle_without_onnx_is_scored_by_keras(app, monkeypatch, tmp_path, tiny_bundle, tif_paths, predictor):
    """An older bundle (no model.onnx) still works: the app loads Keras for it, with the same scores."""
    import shutil

    older = tmp_path / "older"
    shutil.copytree(tiny_bundle, older, ignore=shutil.ignore_patterns("model*.onnx", "figures"))
    card = json.loads((older / "model_card.json").read_text())
    del card["onnx"]
    card.pop("onnx_int8", None)
    (older / "model_card.json").write_text(json.dumps(card))
    monkeypatch.setenv("PATHREVIEW_MODEL", str(older))
    at = app()
    drop(at, [upload(p) for p in tif_paths[:2]])
    assert not at.exception and not errors(at)
    from model_training.inference.predictor import Predictor

    ref = Predictor.load(older).predict(np.stack([read_tile(p) for p in tif_paths[:2]]), tta=True)
    np.testing.assert_allclose(at.dataframe[0].value["P(tumour)"], ref.p, atol=1e-3)
    at.switch_page("views/model_card.py").run()
    assert not at.exception and not any("ONNX Runtime" in md.value for md in at.markdown)
    from app.runtime import model_loader

    assert model_loader.start(str(older.resolve())).result().engine.name == "keras"
