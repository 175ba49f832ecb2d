"""Every page of the Streamlit app, driven through ``AppTest`` against a real tiny bundle and real tiles (the
Model card page and bundle loading: test_app_model_card.py)."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from page_helpers import captions, drop, errors, markdown_shown, mosaic, png, upload
from test_user_text import unescape

from model_training.bundle.disclaimer import DISCLAIMER
from model_training.bundle.files import VAL_PRED_FILE
from model_training.bundle.files import sha256 as file_sha256
from model_training.data.decode import read_tile
from model_training.evaluation.metrics import at_threshold

pytestmark = pytest.mark.slow  # needs the tiny bundle (trained once per session)

VIEW_NAMES = ["original", "90°", "180°", "270°", "T", "T+90°", "T+180°", "T+270°"]
PAGES = ["views/analyze.py", "views/region.py", "views/validation.py", "views/queue.py", "views/agreement.py", "views/cases.py",
         "views/performance.py", "views/model_card.py"]


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
    pick = next(s for s in at.selectbox if s.label.startswith("Open a tile"))
    name = at.dataframe[0].value["file"][pick.value]
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
