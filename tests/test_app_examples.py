"""A fresh machine: the shipped model, no dataset configured; the pages fall back to the example tiles."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from model_training.data.decode import IMAGE_EXTS
from model_training.evaluation.examples import EXAMPLES_DIR, LABELS_FILE
from model_training.evaluation.metrics import at_threshold

MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
SHIPPED = pd.read_csv(EXAMPLES_DIR / LABELS_FILE, dtype={"id": str}).set_index("id")
N_FILES = sum(p.suffix.lower() in IMAGE_EXTS for p in EXAMPLES_DIR.iterdir())


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An AppTest session as ``make run`` gives it on a fresh machine: shipped model, no PATHREVIEW_DATA."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("PATHREVIEW_DATA", raising=False)
    monkeypatch.delenv("PATHREVIEW_MODEL", raising=False)
    monkeypatch.setenv("PATHREVIEW_AUDIT_LOG", str(tmp_path / "audit.csv"))
    monkeypatch.setenv("PATHREVIEW_DEBUG", "1")

    def make(page: str | None = None):
        at = AppTest.from_file(str(MAIN), default_timeout=300).run()
        if page:
            at.switch_page(page).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        return at
    return make


def caption_counts(at) -> dict[str, int]:
    caption = next(c.value for c in at.caption if "tiles scored" in c.value)
    return {k: int(v) for k, v in (part.split(" ") for part in caption.split(" · ")[2:])}


def test_analyze_scores_the_example_tiles_as_an_upload(fresh):
    at = fresh()
    assert any("Drop tiles above" in i.value for i in at.info)
    at.button(key="analyze-examples").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert len(table) == N_FILES
    assert any(m.value.startswith(f"**{N_FILES} tile(s) scored**") for m in at.markdown)
    # the quality gate may keep a few of them from the model (shown, for a demo, as "not assessed")
    gated = table["decision"] == "not assessed"
    assert set(table["decision"]) <= {"tumour", "normal", "not assessed"} and gated.sum() <= 4
    assert (table.loc[gated, "outcome"] == "not assessed").all() and (table.loc[gated, "quality"] != "ok").all()
    assert set(table.loc[~gated, "outcome"]) == {"TP", "FP", "FN", "TN"}
    ids = table["file"].str.removesuffix(".jpg")
    assert list(table["true label"]) == ["tumour" if v else "normal" for v in SHIPPED.loc[ids, "label"]]
    # the shipped model chose them, so it scores them as it did then (8-view TTA, same pixels): the same
    # outcomes, and the probabilities the model of record gave to within what its int8 copy's check allows
    import numpy as np

    from model_training.bundle.files import DEFAULT_BUNDLE
    from model_training.data.decode import read_tile
    from model_training.inference.predictor import Predictor

    kept = ~gated.to_numpy()
    assert list(table["outcome"][kept]) == list(SHIPPED.loc[ids, "outcome_at_selection"][kept])
    shipped_p = SHIPPED.loc[ids, "p_at_selection"].to_numpy()
    assert (table["P(tumour)"] - shipped_p).abs().max() < 0.05
    engine = Predictor.load(DEFAULT_BUNDLE, engine="auto")  # what the app scores with: exactly its figures
    assert engine.engine.name == "onnx-int8"
    ref = engine.predict(np.stack([read_tile(EXAMPLES_DIR / f) for f in table["file"]]), tta=True)
    np.testing.assert_allclose(table["P(tumour)"], ref.p, atol=1e-3)
    # the detail view and the review buttons, as for an upload
    assert any(s.value.startswith("Tile detail · ") for s in at.subheader)
    assert any("Example tile, known label" in c.value for c in at.caption)
    assert any(b.label == "Record review" for b in at.button)

    at.button(key="analyze-examples-close").click().run()
    assert not at.dataframe and any("Drop tiles above" in i.value for i in at.info)


@pytest.mark.parametrize("setting", ["unset", "missing", "empty"])
def test_validation_browser_opens_the_examples_without_a_dataset(fresh, monkeypatch, tmp_path, setting):
    if setting != "unset":  # make run's default sibling folder, or the Docker image's empty /data
        target = tmp_path / setting
        if setting == "empty":
            target.mkdir()
        monkeypatch.setenv("PATHREVIEW_DATA", str(target))
    at = fresh("views/validation.py")
    assert at.radio(key="val-source").value == "Example tiles"
    notice = next(i.value for i in at.info if "No dataset configured" in i.value)
    assert {"unset": "is not set", "missing": "does not exist", "empty": "empty folder"}[setting] in notice
    counts = caption_counts(at)
    assert sum(counts.values()) == N_FILES and set(counts) == {"TP", "FP", "FN", "TN"}

    [b for b in at.button if b.label == "Open"][0].click().run()
    assert any("Ground truth:" in c.value for c in at.caption)


def test_performance_page_evaluates_the_examples(fresh):
    at = fresh("views/performance.py")
    option = next(o for o in at.radio(key="perf-source").options if "example tiles" in o)
    at.radio(key="perf-source").set_value(option).run()
    assert not at.exception and not at.error
    assert any("not to judge the model" in i.value for i in at.info)
    y, p = SHIPPED["label"].to_numpy(), SHIPPED["p_at_selection"].to_numpy()
    thr = float(at.slider(key="perf-thr").value)
    m = at_threshold(y, p, thr)
    caption = next(c.value for c in at.caption if c.value.startswith("At threshold"))
    assert f"TP {m['tp']} · FP {m['fp']} · FN {m['fn']} · TN {m['tn']}" in caption
    assert f"(n = {N_FILES}," in caption
    assert len(at.get("plotly_chart")) == 4


def test_the_app_never_imports_tensorflow(tmp_path):
    """With the shipped bundle's int8 copy of model.onnx the app scores, explains and shows every page without
    TensorFlow, whose import alone takes 4-8 s on a 2-core machine (a fresh process: pytest has imported it already).
    The first page does not import pandas or scipy.ndimage either (0.3 s each; app.warmup imports pandas after
    that page), and scoring tiles with their detail view imports neither scipy.special nor scipy.ndimage."""
    import os
    import subprocess
    import sys

    from model_training.bundle.files import DEFAULT_BUNDLE, read_card

    env = {k: v for k, v in os.environ.items() if k not in ("PATHREVIEW_DATA", "PATHREVIEW_MODEL")}
    env.update(PATHREVIEW_DEBUG="1", PATHREVIEW_DB_URL=f"sqlite:///{tmp_path / 'reviews.db'}",
               PYTHONPATH=str(MAIN.parent.parent))
    out = subprocess.run([sys.executable, "-m", "app.selfcheck"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)  # what CI also runs inside the container image
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert int(lines[-5].removeprefix("pages shown: ")) >= 10
    assert lines[-4] == "first page loaded: []", out.stdout
    assert lines[-3] == "scoring and detail view loaded: []", out.stdout
    assert lines[-2] == "loaded: []", out.stdout
    assert lines[-1] == f"onnx-int8 {read_card(DEFAULT_BUNDLE)['sha256']}", out.stdout  # its int8 copy
