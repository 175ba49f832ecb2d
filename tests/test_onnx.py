"""model.onnx: exported from model.keras, scored by ONNX Runtime, equal to Keras on real tiles, verified on load."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_training.bundle.files import DEFAULT_BUNDLE, BundleError, sha256
from model_training.inference.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped() -> dict[str, Predictor]:
    return {engine: Predictor.load(DEFAULT_BUNDLE, engine=engine) for engine in ("keras", "onnx")}


def test_shipped_bundle_carries_a_verified_export():
    card = json.loads((DEFAULT_BUNDLE / "model_card.json").read_text())
    assert card["onnx"]["sha256"] == sha256(DEFAULT_BUNDLE / "model.onnx")
    assert card["onnx"]["source_sha256"] == card["sha256"] == sha256(DEFAULT_BUNDLE / "model.keras")


def test_shipped_engines_agree_on_real_tiles(shipped, valid_tiles):
    x = valid_tiles[0]
    keras_r, onnx_r = (shipped[e].predict(x, tta=True) for e in ("keras", "onnx"))
    assert np.abs(keras_r.logit - onnx_r.logit).max() < 1e-4
    assert np.abs(keras_r.views - onnx_r.views).max() < 1e-5
    assert (keras_r.decision == onnx_r.decision).all() and (keras_r.needs_review == onnx_r.needs_review).all()
    for tile in x[:8]:
        k, o = shipped["keras"].explain_all(tile), shipped["onnx"].explain_all(tile)
        for method in k:
            assert np.abs(k[method] - o[method]).max() < 1e-4, method


def test_the_onnx_engine_never_imports_tensorflow():
    """The point of the export: scoring and Grad-CAM without TensorFlow in the process."""
    code = ("import sys, numpy as np\n"
            "from model_training.inference.predictor import Predictor\n"
            "p = Predictor.load(sys.argv[1], engine='auto')\n"
            "t = np.full((96, 96, 3), 180, np.uint8)\n"
            "p.predict(t[None], tta=True); p.explain_all(t)\n"
            "print(p.engine.name, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, str(DEFAULT_BUNDLE)], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "onnx-int8 []", out.stdout + out.stderr  # "auto" takes the int8 copy


def test_refuses_a_tampered_missing_or_stale_export(tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(DEFAULT_BUNDLE, copy, ignore=shutil.ignore_patterns("figures"))
    with open(copy / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    for engine in ("onnx", "auto"):
        with pytest.raises(BundleError, match=r"model\.onnx: sha256 .* does not match the model card"):
            Predictor.load(copy, engine=engine)
    assert Predictor.load(copy, engine="keras", warm_up=False).engine.name == "keras"  # model.keras is fine
    card = json.loads((copy / "model_card.json").read_text())
    card["onnx"]["source_sha256"] = "0" * 64
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="exported from another model.keras"):
        Predictor.load(copy, engine="auto")
    (copy / "model.onnx").unlink()
    card["onnx"]["source_sha256"] = card["sha256"]
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="lists model.onnx, but the file is missing"):
        Predictor.load(copy, engine="auto")
    del card["onnx"]
    (copy / "model_card.json").write_text(json.dumps(card))
    assert Predictor.load(copy, engine="auto", warm_up=False).engine.name == "keras"  # no export: Keras scores
    with pytest.raises(BundleError, match="no model.onnx; export one"):
        Predictor.load(copy, engine="onnx")


def test_cli_exports_an_older_bundle(tmp_path, data_root):
    copy = tmp_path / "b"
    shutil.copytree(DEFAULT_BUNDLE, copy, ignore=shutil.ignore_patterns("figures", "model*.onnx"))
    card = json.loads((copy / "model_card.json").read_text())
    del card["onnx"], card["onnx_int8"]
    (copy / "model_card.json").write_text(json.dumps(card))
    out = subprocess.run([sys.executable, "-m", "model_training.cli.onnx_export", str(copy), "--data", str(data_root)],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "largest logit difference" in out.stdout and out.stderr == "", out.stderr
    exported = json.loads((copy / "model_card.json").read_text())["onnx"]
    assert exported["check_tiles"] == 32 + 256 and exported["max_abs_logit_diff"] < 1e-4
    assert Predictor.load(copy, engine="onnx").engine.name == "onnx"


def test_cli_names_a_folder_that_is_not_a_bundle(tmp_path):
    out = subprocess.run([sys.executable, "-m", "model_training.cli.onnx_export", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1, out.stderr
    assert "not a PathReview model bundle" in out.stderr and "Traceback" not in out.stderr


def _toy(head: str = "gap"):
    """A small functional model that uses every converted layer type, with random non-trivial BN statistics."""
    import keras
    from keras import layers

    from model_training.bundle.contract import LAST_CONV, LOGIT, OUTPUT
    from model_training.bundle.layers import ChannelReverse

    inp = keras.Input((96, 96, 3), name="tile")
    x = layers.Rescaling(1 / 255.0, offset=-0.5)(inp)
    x = ChannelReverse()(x)
    x = layers.Conv2D(8, 5, strides=2, padding="same", use_bias=False)(x)  # 48: odd padding split
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(8, 3, strides=2, padding="valid", activation="relu")(x)  # 23
    a = layers.MaxPooling2D(3, strides=2, padding="same")(x)  # 12
    b = layers.Conv2D(8, 1, strides=2, padding="same")(x)
    x = layers.Concatenate()([a, layers.Activation("relu")(b)])
    y = layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    x = layers.Add()([layers.Conv2D(16, 1)(x), y])
    x = layers.Activation("linear", name=LAST_CONV)(layers.ReLU()(x))
    if head == "gap":
        x = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(x))
    else:
        x = layers.Flatten()(x)
    logit = layers.Dense(1, name=LOGIT)(x)
    model = keras.Model(inp, layers.Activation("sigmoid", name=OUTPUT)(logit))
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.2, 3, c)])
    return model


def test_every_converted_layer_matches_keras(valid_tiles):
    import onnxruntime as ort

    from model_training.bundle.contract import INPUT
    from model_training.export.onnx_graph import to_onnx

    model = _toy()
    session = ort.InferenceSession(to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    x = valid_tiles[0][:16].astype(np.float32)
    logit, = session.run(["logit"], {INPUT: x})
    import keras

    from model_training.bundle.contract import LOGIT

    want = keras.Model(model.inputs, model.get_layer(LOGIT).output).predict(x, verbose=0)
    assert np.abs(logit - want).max() < 1e-4 * max(1.0, np.abs(want).max())


def test_refuses_what_it_cannot_convert():
    import keras
    from keras import layers

    from model_training.export.onnx_graph import ExportError, to_onnx

    with pytest.raises(ExportError, match="gradient is not a constant"):
        to_onnx(_toy(head="flatten"))
    inp = keras.Input((96, 96, 3))
    with pytest.raises(ExportError, match="no 'last_conv' and 'logit' layers"):
        to_onnx(keras.Model(inp, layers.Conv2D(4, 3)(inp)))
    x = layers.Conv2D(4, 3, name="last_conv")(layers.LayerNormalization(name="odd_norm")(inp))
    logit = layers.Dense(1, name="logit")(layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ExportError, match="'odd_norm' \\(LayerNormalization\\) is not supported"):
        to_onnx(keras.Model(inp, logit))
