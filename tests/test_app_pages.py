"""Every page of the Streamlit app, driven through ``AppTest`` against a real tiny bundle and real tiles."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_user_text import unescape

from model_training.bundle.disclaimer import DISCLAIMER
from model_training.bundle.files import VAL_PRED_FILE
from model_training.bundle.files import sha256 as file_sha256
from model_training.data.decode import read_tile
from model_training.evaluation.metrics import at_threshold

pytestmark = pytest.mark.slow  # needs the tiny bundle (trained once per session)

VIEW_NAMES = ["original", "90°", "180°", "270°", "T", "T+90°", "T+180°", "T+270°"]
MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
PAGES = ["views/analyze.py", "views/region.py", "views/validation.py", "views/queue.py", "views/agreement.py", "views/cases.py",
         "views/performance.py", "views/model_card.py"]


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    """The tiny bundle on the engine the app picks for it (its int8 copy when it has one)."""
    from model_training.inference.predictor import Predictor

    return Predictor.load(tiny_bundle, engine="auto")


@pytest.fixture
def app(monkeypatch, tmp_path, tiny_bundle, data_root):
    """A fresh AppTest session on the tiny bundle, with its own review store; page errors raise."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PATHREVIEW_MODEL", str(tiny_bundle))
    monkeypatch.setenv("PATHREVIEW_DB_URL", f"sqlite:///{tmp_path / 'reviews.db'}")
    monkeypatch.setenv("PATHREVIEW_DATA", str(data_root))
    monkeypatch.setenv("PATHREVIEW_DEBUG", "1")

    def make(page: str | None = None):
        at = AppTest.from_file(str(MAIN), default_timeout=300).run()
        if page:
            at.switch_page(page).run()
        return at
    return make


@pytest.fixture(scope="module")
def tif_paths(data_root) -> list[Path]:
    return sorted((data_root / "samples" / "kaggle-tif" / "train").glob("*.tif"))


def upload(path: Path, name: str | None = None) -> tuple[str, bytes, str]:
    return (name or path.name, path.read_bytes(), "image/tiff")


def drop(at, files: list[tuple[str, bytes, str]]):
    """Files dropped on the Analyze page, as the drop zone hands them over (drop_zone.parse's result).

    AppTest has no browser to run the drop zone's script; tests/test_e2e.py drops files in Chromium.
    """
    from app.inputs.drop_zone import Dropped

    at.session_state["analyze_files"] = Dropped.of([(name, data) for name, data, _ in files])
    return at.run()


def mosaic(data_root: Path, rows: int, cols: int) -> np.ndarray:
    """A larger H&E image stitched from real validation tiles (tumour and normal alternating)."""
    labels = pd.read_csv(data_root / "valid_labels.csv")
    ids = [i for pair in zip(labels[labels.label == 1].id, labels[labels.label == 0].id) for i in pair]
    tiles = [read_tile(data_root / "valid" / f"{i}.jpg") for i in ids[:rows * cols]]
    return np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], axis=1) for r in range(rows)])


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def errors(at) -> list[str]:
    """The error messages as the reader sees them (names in them are escaped for markdown)."""
    return [unescape(e.value) for e in at.error]


def test_every_page_renders_with_the_banner_and_no_exception(app):
    at = app()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert not errors(at), (page, errors(at))
        assert DISCLAIMER in at.warning[0].value, page


def test_analyze_scores_good_tiles_and_reports_each_bad_file(app, tif_paths, predictor):
    at = app()
    files = [upload(p) for p in tif_paths[:3]] + [("empty.tif", b"", "image/tiff"),
                                                  ("notes.png", b"these are my notes, not a tile\n", "image/png")]
    drop(at, files)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["file"]) == [p.name for p in tif_paths[:3]]
    msgs = errors(at)
    assert len(msgs) == 2
    assert msgs[0].startswith("empty.tif") and "empty (0 bytes)" in msgs[0]
    assert msgs[1].startswith("notes.png") and "not an image" in msgs[1]
    # the table holds the predictor's own 8-view TTA scores for these pixels
    ref = predictor.predict(np.stack([read_tile(p) for p in tif_paths[:3]]), tta=True)
    np.testing.assert_allclose(table["P(tumour)"], ref.p, atol=1e-3)
    assert list(table["decision"]) == ["tumour" if d else "normal" for d in ref.decision]
    np.testing.assert_allclose(table["TTA spread"], ref.spread, atol=1e-3)
    assert list(table["needs review"]) == list(ref.needs_review)
    # detail view of the highest-scoring tile: TTA score and 8 per-view scores
    best = int(np.argmax(ref.p))
    assert unescape(at.subheader[0].value) == f"Tile detail · {tif_paths[best].name}"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["P(tumour), 8-view TTA"] == f"{ref.p[best]:.3f}"
    view_scores = [float(c.split(": ")[1]) for c in captions(at) if c.split(": ")[0] in VIEW_NAMES]
    np.testing.assert_allclose(view_scores, ref.views[best], atol=1e-3)


def test_analyze_takes_a_zip_of_tiles(app, tif_paths, predictor):
    """A folder of tiles zipped into one upload: every tile scored, the one unusable member named."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in tif_paths[:4]:
            z.write(p, f"slide 3/{p.name}")
        z.writestr("slide 3/notes.txt", "stain batch 7")
    at = app()
    drop(at, [("slide3.zip", buf.getvalue(), "application/zip")])
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["file"]) == [p.name for p in tif_paths[:4]]
    ref = predictor.predict(np.stack([read_tile(p) for p in tif_paths[:4]]), tta=True)
    np.testing.assert_allclose(table["P(tumour)"], ref.p, atol=1e-3)
    assert errors(at) == ["slide3.zip/slide 3/notes.txt: not a tile image (.tif .png .jpg); skipped"]


def test_files_the_browser_refused_are_named_beside_the_scores_and_clear_empties_the_page(app, tif_paths):
    import base64

    from app.inputs import drop_zone

    good = [{"name": p.name, "size": p.stat().st_size, "data": base64.b64encode(p.read_bytes()).decode()}
            for p in tif_paths[:2]]
    at = app()
    at.session_state["analyze_files"] = drop_zone.parse({"files": good + [
        {"name": "case 4/slide.svs", "size": 2**30, "data": None, "reason": "type"},
        {"name": "case 4/scan.png", "size": 6 * 2**20, "data": None, "reason": "size"}]})
    at.run()
    assert list(at.dataframe[0].value["file"]) == [p.name for p in tif_paths[:2]]
    assert errors(at) == ["case 4/slide.svs: not a tile image (.tif .png .jpg) or a .zip of tiles; skipped",
                          "case 4/scan.png: is 6.0 MB; the limit for a tile is 5 MB"]
    assert any("2 tile(s) scored" in m.value and "2 file(s) could not be used" in m.value for m in at.markdown)

    at.button(key="analyze-clear").click().run()
    assert not at.dataframe and not errors(at)
    assert any("Drop tiles above" in i.value for i in at.info)


def test_duplicates_are_renamed_and_large_images_can_be_centre_cropped(app, tif_paths, data_root):
    at = app()
    big = mosaic(data_root, 2, 2)[48:176, 48:176]  # 128x128 real H&E
    files = [upload(tif_paths[0]), upload(tif_paths[1], tif_paths[0].name), ("big.png", png(big), "image/png")]
    drop(at, files)
    dup = tif_paths[0].stem + " (2).tif"
    assert list(at.dataframe[0].value["file"]) == [tif_paths[0].name, dup]
    assert any(f"→ {dup}" in unescape(i.value) for i in at.info)
    assert len(errors(at)) == 1 and "128x128" in errors(at)[0] and "96x96" in errors(at)[0]
    assert any("Centre-crop" in i.value for i in at.info)

    at.checkbox(key="analyze-crop").check().run()
    table = at.dataframe[0].value
    assert list(table["file"]) == [tif_paths[0].name, dup, "big.png"] and not errors(at)
    assert table["note"].iloc[2] == "centre-cropped to 96x96"
    expected = hashlib.sha256(np.ascontiguousarray(big[16:112, 16:112]).tobytes()).hexdigest()[:16]
    assert table["pixel sha256"].iloc[2] == expected


def test_review_goes_to_the_store_with_real_hashes(app, tif_paths, tiny_bundle, tmp_path, predictor):
    at = app()
    at.text_input(key="reviewer").input("dr. test")
    drop(at, [upload(p) for p in tif_paths[:2]])
    name = at.dataframe[0].value["file"][at.selectbox(key="analyze-pick").value]
    at.radio(key="analyze-choice").set_value("disagree")
    at.text_area(key="analyze-comment").input("=looks reactive")
    next(b for b in at.button if b.label == "Record review").click().run()
    assert not at.exception and any("Recorded" in s.value for s in at.success)

    from app import store
    from app.store.audit_csv import read_csv_export

    log = read_csv_export(store.export_csv(store.reviews_frame()))
    assert list(log.columns) == store.EXPORT_COLUMNS and len(log) == 1
    row = log.iloc[0]
    tile = read_tile(next(p for p in tif_paths if p.name == name))
    assert row["file"] == name and row["reviewer"] == "dr. test" and row["review"] == "disagree"
    assert row["comment"] == "'=looks reactive" and row["source"] == "upload" and row["upload_name"] == name
    assert row["pixel_sha256"] == hashlib.sha256(tile.tobytes()).hexdigest()
    assert row["model_sha256"] == file_sha256(tiny_bundle / "model.keras")
    assert row["scorer"] == predictor.engine.name  # the engine whose P the reviewer saw
    ref = predictor.predict(tile[None], tta=True)
    assert float(row["p"]) == pytest.approx(float(ref.p[0]), abs=1e-4)
    assert float(row["threshold"]) == pytest.approx(predictor.threshold(True), abs=1e-6)
    assert row["model_decision"] == ("tumour" if ref.decision[0] else "normal")
    assert len(at.session_state["pathreview_decisions"]) == 1
    assert "1 review(s) recorded" in " ".join(c.value for c in at.sidebar.caption)


def test_region_view_scores_every_tile_position(app, data_root, predictor):
    at = app("views/region.py")
    img = mosaic(data_root, 3, 4)  # 288 x 384
    at.file_uploader(key="region-upload").set_value(("region.png", png(img), "image/png")).run()
    assert not at.exception and not errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tiles scored"] == "12" and metrics["Image"] == "384×288"
    ref = predictor.predict(np.stack([img[y:y + 96, x:x + 96] for y in (0, 96, 192) for x in (0, 96, 192, 288)]))
    # among the tiles the quality gate lets the model answer; the others are counted apart
    assert metrics["Highest P(tumour)"] == f"{ref.p[ref.assessed].max():.3f}"
    assert metrics["Not assessed"] == str(int((~ref.assessed).sum()))
    assert len(at.get("plotly_chart")) == 1

    at.radio(key="region-stride").set_value(48).run()
    assert {m.label: m.value for m in at.metric}["Tiles scored"] == str(5 * 7)
    at.radio(key="region-stride").set_value(32).run()
    assert {m.label: m.value for m in at.metric}["Tiles scored"] == str(7 * 10)
    assert unescape(at.subheader[0].value).startswith("Tile detail · region.png @ x=")


def test_region_view_rejects_unusable_images(app):
    at = app("views/region.py")
    at.file_uploader(key="region-upload").set_value(("tiny.png", png(np.zeros((50, 80, 3), np.uint8)),
                                                     "image/png")).run()
    assert not at.exception and "at least 96x96" in errors(at)[0]
    # over the 50 MB limit: refused by the page as well (a client need not be a browser), before decoding
    at.file_uploader(key="region-upload").set_value(("scan.png", b"\0" * (51 * 2**20), "image/png")).run()
    assert not at.exception and errors(at) == ["scan.png: is 51 MB; the limit for a region is 50 MB"]


def test_validation_browser_filters_outcomes_and_opens_a_tile(app):
    at = app("views/validation.py")
    at.number_input(key="val-n").set_value(100).run()
    assert not at.exception and not errors(at)
    caption = next(c.value for c in at.caption if "tiles scored" in c.value)
    counts = {k: int(v) for k, v in (part.split(" ") for part in caption.split(" · ")[2:])}
    assert sum(counts.values()) == 100 and set(counts) == {"TP", "FP", "FN", "TN"}

    at.multiselect(key="val-filter").set_value(["FP"]).run()
    shown = [c for c in captions(at) if "P=" in c]
    assert len(shown) == min(24, counts["FP"]) and all(c.startswith("FP") for c in shown)

    at.slider(key="val-thr").set_value(0.999).run()  # nothing is positive any more
    caption = next(c.value for c in at.caption if "tiles scored" in c.value)
    assert "TP 0" in caption and "FP 0" in caption

    at.multiselect(key="val-filter").set_value(["FN", "TN"]).run()
    open_buttons = [b for b in at.button if b.label == "Open"]
    open_buttons[0].click().run()
    assert any(s.value.startswith("Tile detail · ") for s in at.subheader)
    assert any("Ground truth:" in c.value for c in at.caption)


def test_a_threshold_moved_on_single_view_scores_does_not_carry_to_tta_predictions(app, tiny_bundle):
    card = json.loads((tiny_bundle / "model_card.json").read_text())
    single, tta = card["calibration"]["single"]["threshold"], card["calibration"]["tta"]["threshold"]
    at = app("views/validation.py")
    at.number_input(key="val-n").set_value(60).run()
    assert at.slider(key="val-thr").value == pytest.approx(single, abs=1e-3)  # single view by default
    at.slider(key="val-thr").set_value(0.9).run()
    at.switch_page("views/performance.py").run()
    assert not at.exception
    # the bundle's own predictions are 8-view TTA: their threshold, not the single-view one moved above
    assert at.slider(key="perf-thr").value == pytest.approx(tta, abs=1e-3)
    assert at.radio(key="perf-source").value.startswith("Bundle validation predictions")
    at.radio(key="perf-source").set_value(next(o for o in at.radio(key="perf-source").options
                                               if o.startswith("Validation browser"))).run()
    assert at.slider(key="perf-thr").value == pytest.approx(0.9)  # the browser's own predictions: kept
    assert any("How the threshold was chosen:" in m.value for m in at.markdown)


def test_validation_browser_reports_a_bad_dataset_path(app, tmp_path, data_root):
    at = app("views/validation.py")
    at.text_input(key="val-path").input(str(data_root / "nowhere")).run()
    assert not at.exception and "no such file or folder" in errors(at)[0]
    at.text_input(key="val-path").input(str(tmp_path)).run()  # outside the configured roots
    assert not at.exception and "outside the folders this server may open" in errors(at)[0]


def test_performance_metrics_follow_the_threshold_slider(app, tiny_bundle):
    at = app("views/performance.py")
    vp = pd.read_csv(tiny_bundle / VAL_PRED_FILE, dtype={"p": np.float32})
    card = json.loads((tiny_bundle / "model_card.json").read_text())
    before = {m.label: m.value for m in at.metric}
    ref = card["validation"]["tta"]["at_threshold"]
    assert before["Sensitivity"] == f"{ref['sensitivity']:.3f}"
    assert before["Specificity"] == f"{ref['specificity']:.3f}"

    thr = round(float(np.quantile(vp["p"], 0.7)), 3)
    at.slider(key="perf-thr").set_value(thr).run()
    after = {m.label: m.value for m in at.metric}
    m = at_threshold(vp["label"].to_numpy(), vp["p"].to_numpy(), thr)
    assert after["Sensitivity"] == f"{m['sensitivity']:.3f}" != before["Sensitivity"]
    assert after["Specificity"] == f"{m['specificity']:.3f}" != before["Specificity"]
    assert after["NPV"] == f"{m['npv']:.3f}" and after["PPV (precision)"] == f"{m['precision']:.3f}"
    assert len(at.get("plotly_chart")) == 4  # ROC, confusion, reliability, training curves

    at.button(key="perf-reset").click().run()
    assert {m.label: m.value for m in at.metric}["Sensitivity"] == before["Sensitivity"]


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
    assert slide_table["auc"].tolist() == [str(card["slide_level"][s]["auc"]) for s in ("fit_set", "test_set")]
    # the size rule, and what it does on larger slides made of the held-out ones
    assert any("**Size rule.**" in md.value and f"above {card['slide_level']['parameters']['reference_tiles']}"
               in md.value for md in at.markdown)
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
    assert refit["hard_negatives"] == str(card["head_refit"]["hard_negatives"])


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


def markdown_shown(at) -> list[str]:
    """The source of every element the browser renders as markdown."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "subheader", "title", "header")
    return [e.value for kind in kinds for e in getattr(at, kind)]


def test_names_from_a_zip_and_the_store_are_shown_as_typed_never_as_links(app, tif_paths, tiny_bundle):
    """A member path that is markdown for an image and a phishing link, on the uploader's detail view and
    on another reviewer's Review queue."""
    import zipfile

    from test_user_text import PHISH

    from app import store

    member = f"{PHISH}/tumour.tif"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, tif_paths[0].read_bytes())
    at = app()
    drop(at, [("case.zip", buf.getvalue(), "application/zip")])
    assert not at.exception
    shown = markdown_shown(at)
    assert any(f"case.zip/{member}" in unescape(s) for s in shown), shown  # the name is there, as text
    assert not [s for s in shown if "](http" in s or "![" in s or "http://" in s]  # but never as markup

    item = store.ItemIn.from_tile(read_tile(tif_paths[1]), source="upload", name="tumour.tif",
                                  upload_name=f"case.zip/{member}", model_sha256="0" * 64, p=0.9, spread=0.01,
                                  threshold=0.5)
    store.add_items([item])
    queue = app()
    queue.session_state["reviewer"] = "reader B"
    queue.switch_page("views/queue.py").run()
    assert not queue.exception
    shown = markdown_shown(queue)
    assert any(f"Uploaded as case.zip/{member}" in unescape(s) for s in shown), shown
    assert not [s for s in shown if "](http" in s or "![" in s or "http://" in s]
