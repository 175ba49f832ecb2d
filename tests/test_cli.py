"""The evaluate and score commands on real data, as the README runs them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.cli import evaluate, score

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
# the start-up and failure chatter of TensorFlow, XLA and the PNG exporter that a plain run must not show
NOISE = ("Traceback", "choreographer", "Kaleido requires", "absl::InitializeLog", "oneDNN", "cuda_platform",
         "cudart_stub", "cpu_feature_guard", "op_level_cost_estimator", "UserWarning")


def test_evaluate_prints_metric_table_and_writes_report(tiny_bundle, data_root, tmp_path, capsys):
    rc = evaluate.main(["--model", str(tiny_bundle), "--data", str(data_root), "--split", "valid",
                        "--limit", "300", "--tta", "--report", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "300 tiles" in out and "with 8-view TTA" in out
    for row in ("ROC-AUC", "NLL", "ECE", "accuracy", "precision (PPV)", "recall / sensitivity", "specificity", "F1",
                "TP / FP / FN / TN"):
        assert row in out, row
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    t = m["at_threshold"]
    assert t["tp"] + t["fp"] + t["fn"] + t["tn"] == 300
    assert (tmp_path / "rep" / "figures" / "roc.html").exists()


def test_evaluate_bad_path_is_a_message(tiny_bundle, tmp_path, capsys):
    rc = evaluate.main(["--model", str(tiny_bundle), "--data", str(tmp_path / "missing")])
    assert rc == 2 and "no such file or folder" in capsys.readouterr().err


def test_score_streams_the_real_valid_split(tiny_bundle, data_root, tmp_path):
    out = tmp_path / "scores.csv"
    assert score.main(["--model", str(tiny_bundle), "--data", str(data_root), "--split", "valid",
                       "--out", str(out), "--batch-size", "512"]) == 0
    df = pd.read_csv(out)
    assert len(df) == len(list((data_root / "valid").glob("*.jpg")))
    assert df["p"].between(0, 1).all() and df["id"].is_unique


def test_score_kaggle_submission_skips_bad_tiles(tiny_bundle, data_root, tmp_path, capsys):
    folder = tmp_path / "test"
    folder.mkdir()
    tifs = sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))[:20]
    for f in tifs:
        shutil.copy(f, folder / f.name)
    (folder / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    out = tmp_path / "submission.csv"
    assert score.main(["--model", str(tiny_bundle), "--data", str(folder), "--out", str(out), "--kaggle"]) == 0
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["id", "label"] and len(sub) == 20
    assert set(sub["id"]) == {f.stem for f in tifs}
    assert "1 unreadable tiles skipped" in capsys.readouterr().out


def test_score_hdf5(tiny_bundle, data_root, tmp_path):
    out = tmp_path / "h5.csv"
    h5 = data_root / "samples" / "pcam-h5" / "camelyonpatch_level_2_split_valid_x.h5"
    assert score.main(["--model", str(tiny_bundle), "--data", str(h5), "--out", str(out), "--tta"]) == 0
    df = pd.read_csv(out)
    assert len(df) == 256 and (df["spread"] >= 0).all() and df["p"].between(0, 1).all()
    from model_training.data.sources import open_source
    assert df["label"].tolist() == open_source(h5).labels.tolist()


@pytest.mark.parametrize("browser", ["missing", "broken"])
def test_evaluate_cli_is_quiet_and_a_failed_png_is_one_line(tiny_bundle, data_root, tmp_path, browser):
    """No browser on PATH (and none where kaleido also looks), or one that talks garbage: only the results,
    the progress bar and one line saying the PNG was skipped."""
    fake = tmp_path / "chromium"
    if browser == "broken":  # writes non-JSON to the DevTools pipe and exits: kaleido's tracebacks path
        fake.write_text("#!/bin/sh\necho 'not json' >&4\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "BROWSER_PATH": str(fake)}
    for var in ("PATHREVIEW_DEBUG", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(var, None)
    r = subprocess.run([sys.executable, "-m", "model_training.cli.evaluate", "--model", str(tiny_bundle),
                        "--data", str(data_root), "--split", "valid", "--limit", "64",
                        "--report", str(tmp_path / "rep")], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "64 tiles" in r.stdout and "ROC-AUC" in r.stdout
    for noise in NOISE:
        assert noise not in out, f"{noise!r} in:\n{out}"
    png_lines = [line for line in out.splitlines() if "PNG" in line]
    assert len(png_lines) == 1 and "figures/roc.html written; PNG skipped" in png_lines[0], out
    if browser == "missing":
        assert "no Chromium/Chrome browser found" in png_lines[0]
    figs = tmp_path / "rep" / "figures"
    assert (figs / "roc.html").exists() and not list(figs.glob("*.png"))


def test_score_uses_the_int8_copy_by_default_without_tensorflow(data_root, tmp_path):
    """Like the slides command, score runs on the shipped bundle's int8 copy unless told otherwise, so a plain
    run neither imports TensorFlow nor scores differently from ``--engine onnx-int8``."""
    from model_training.data.sources import open_source
    from model_training.inference.predictor import Predictor

    folder = data_root / "samples" / "kaggle-tif" / "train"
    out = tmp_path / "scores.csv"
    code = ("import sys; from model_training.cli.score import main; rc = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, "--data", str(folder), "--out", str(out)], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    said, loaded_tf = run.stdout.strip().splitlines()[-2:]
    assert "scored with onnx-int8" in said and loaded_tf == "False"
    tiles, _, ids = open_source(folder).load_all()
    want = Predictor.load(DEFAULT_BUNDLE, engine="onnx-int8").predict(tiles).p
    got = pd.read_csv(out).set_index("id").loc[[str(i) for i in ids], "p"].to_numpy()
    assert abs(got - want).max() < 1e-6
