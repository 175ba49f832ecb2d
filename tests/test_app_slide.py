"""The Slide page through ``AppTest`` on the shipped model: a real Aperio slide and a labelled slide of real
patches from the operator's folder, every refusal, the gallery into the detail view, reviews and the queue
keeping the slide and the coordinates."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from real_inputs import SVS
from test_store_pages import errors, record
from test_user_text import unescape

from app import store
from app.display.slide_answer import size_caption
from model_training.bundle.files import DEFAULT_BUNDLE, read_card
from model_training.slides.answer import SlideLevel, answer

pytestmark = pytest.mark.slow  # loads the shipped model



@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_root) -> Path:
    """The operator's slide folder: the Aperio slide, a labelled slide, one without resolution, glass, junk,
    a normal slide larger than the case slides, and a symlink that leads out of the folder."""
    from model_training.data.sources import open_source
    from model_training.data.subsets import stratified_subset
    from model_training.slides.labelled import build

    src = os.environ.get("PATHREVIEW_SLIDES")
    if not src or not (Path(src) / SVS).is_file():
        pytest.skip(f"PATHREVIEW_SLIDES is not set to a folder holding {SVS} (../shared/slides)")
    root = tmp_path_factory.mktemp("slides")
    (root / "cases").mkdir()
    shutil.copy(Path(src) / SVS, root / "cases" / SVS)
    (root / "cases" / "same-slide.svs").symlink_to(root / "cases" / SVS)  # a link that stays inside is fine
    tiles, labels, ids = stratified_subset(open_source(data_root, "valid"), 48, seed=5).load_all()
    build(tiles, labels, ids, 8, root / "node.tiff")
    normal = stratified_subset(open_source(data_root, "valid"), 600, seed=6).load_all()
    keep = normal[1] == 0  # a normal slide three times the case slides' size
    build(normal[0][keep][:168], normal[1][keep][:168], [i for i, k in zip(normal[2], keep) if k][:168], 14,
          root / "large.tiff")
    build(tiles[:16], labels[:16], ids[:16], 4, root / "nompp.tiff", mpp=None)
    Image.fromarray(np.full((700, 700, 3), 244, np.uint8)).save(root / "glass.png")
    (root / "broken.svs").write_bytes(b"II*\x00" + os.urandom(5000))
    outside = tmp_path_factory.mktemp("elsewhere")
    build(tiles[:16], labels[:16], ids[:16], 4, outside / "secret.tiff")
    (root / "escape.tiff").symlink_to(outside / "secret.tiff")
    return root


@pytest.fixture
def app(app_session, monkeypatch, folder):
    """``make(slide, name)``: conftest's ``app_session`` on the Slide page with ``slide`` of the fixture folder."""
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(folder))

    def make(slide: str, name: str | None = "dr. slide"):
        at = app_session("views/slide.py", name)
        if at.selectbox(key="slide-name").value != slide:
            at.selectbox(key="slide-name").select(slide).run()
        return at
    make.url = app_session.url
    return make


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def test_the_folder_lists_the_slides_and_a_labelled_slide_scores_like_the_cli(app, folder, tmp_path):
    from model_training.inference.predictor import Predictor
    from model_training.slides.run import run_slide

    at = app("node.tiff")
    assert not at.exception and not errors(at)
    options = set(at.selectbox(key="slide-name").options)
    assert options >= {f"cases/{SVS}", "cases/same-slide.svs", "node.tiff", "nompp.tiff", "glass.png"}
    assert "escape.tiff" not in options  # a link out of the slide folder is not even listed
    # the engine the page and the command both pick (the int8 copy): the same scores, flag for flag
    command = Predictor.load(DEFAULT_BUNDLE, engine="auto")
    result, _ = run_slide(command, folder / "node.tiff", tmp_path, progress=False)
    assert metric(at, "Tiles scored") == str(result.summary["tiles_scored"])
    # the slide-level answer, as the command gives it: a slide half of tumour patches, its flags
    answer = result.summary["slide_level"]
    assert answer["decision"] == "metastasis" and metric(at, "Flagged") == str(answer["tiles_flagged"])
    # the tiles to look at: the flagged ones, and those worth a look (at the tile threshold, or uncertain)
    tiles = result.frame
    flags = tiles["flagged"].to_numpy(bool)
    look = flags | (tiles["decision"] == "tumour").to_numpy() | tiles["needs_review"].to_numpy(bool)
    assert metric(at, "Worth a look") == str(int((look & ~flags).sum())) != "0"
    assert any(c.value.startswith(f"{int(look.sum())} tiles to look at: {int(flags.sum())} flagged (red), "
                                  f"{int((look & ~flags).sum())} worth a look") for c in at.caption)
    said = next(w.value for w in at.warning if w.value.startswith("Slide answer: **metastasis suspected** · "))
    # the page shows the score to 3 decimals
    assert float(said.split("slide score ")[1].split(" ")[0]) == pytest.approx(answer["slide_score"], abs=0.0005)
    # what the answer is worth, with the held-out figures of the card it came from
    test = read_card(DEFAULT_BUNDLE)["slide_level"]["test_set"]
    worth = next(c.value for c in at.caption if "held-out labelled case slides" in c.value)
    assert f"called {test['sensitivity']:.0%} of the {test['positive_slides']} with a metastasis" in worth
    assert f"({test['folds']}-fold cross-validation: each slide answered by a fit that had not seen it)" in worth
    assert f"(95% CI {test['specificity_ci95'][0]:.0%}–{test['specificity_ci95'][1]:.0%})" in worth
    assert any("0.972 µm/px (slide metadata)" in c.value for c in at.caption)
    assert {b.label for b in at.get("download_button")} >= {"GeoJSON for QuPath", "Tiles CSV", "Heat map PNG"}


def test_a_slide_larger_than_the_case_slides_says_how_it_was_read_and_what_was_measured_at_that_size():
    card = read_card(DEFAULT_BUNDLE)
    level = SlideLevel.from_card(card)
    ref = level.reference_tiles
    assert size_caption(card, ref, level.size_shift(ref)) is None  # the case slides' own size: nothing to add
    n = 4 * ref
    four = next(r for r in card["slide_level"]["size_check"] if r["factor"] == 4)
    text = size_caption(card, n, level.size_shift(n))
    assert f"{n:,} assessed tiles, 4× the {ref} of the case slides" in text
    assert f"read {level.size_shift(n):.1f} logits lower" in text
    called = round(four["with_size_rule"]["metastases_called"] * four["metastasis_slides"])
    assert f"and {called} of {four['metastasis_slides']} with a 1–8-tile metastasis were called" in text
    assert "larger than any measured" not in text
    # a slide a little larger than the case slides says by how much, not "1×"
    assert f"{ref + ref // 5:,} assessed tiles, 1.2× the {ref} of" in size_caption(card, ref + ref // 5, 0.2)
    # a whole lymph node is far beyond the check: the caption says so
    huge = size_caption(card, 400 * ref, level.size_shift(400 * ref))
    assert "larger than any measured: treat its answer as an ordering, not a call" in huge


def test_a_large_normal_slide_is_read_with_the_size_rule_and_the_page_says_so(app, folder, tmp_path):
    from model_training.inference.predictor import Predictor
    from model_training.slides.run import run_slide

    at = app("large.tiff")
    assert not at.exception and not errors(at)
    command = Predictor.load(DEFAULT_BUNDLE, engine="auto")  # the page's engine
    result, _ = run_slide(command, folder / "large.tiff", tmp_path, progress=False)
    said = result.summary["slide_level"]
    level = SlideLevel.from_card(read_card(DEFAULT_BUNDLE))
    assert said["tiles_assessed"] > 2 * level.reference_tiles and said["size_shift"] > 0.9
    assert said["tile_flag_p"] > level.tile_flag_p  # the flag level rises with the slide
    larger = next(c.value for c in at.caption if "assessed tiles," in c.value)
    assert f"read {said['size_shift']:.1f} logits lower" in larger and "with a 1–8-tile metastasis were called" in larger
    assert metric(at, "Flagged") == str(said["tiles_flagged"])


def test_a_flagged_tile_opens_in_the_detail_view_and_its_review_keeps_the_slide_and_position(app):
    at = app(f"cases/{SVS}")
    assert not errors(at), errors(at)
    assert metric(at, "Tiles scored") != "0"
    # skin, not lymph node: said above the heat map, and most tiles are kept from the model
    assert any("does not look like the lymph-node H&E slides" in w.value for w in at.warning)
    assert int(metric(at, "Not assessed")) > int(metric(at, "Tiles scored")) // 2
    # so the model gives it no slide answer and flags none of its tiles (those at the tile threshold stay listed)
    assert any(i.value.startswith("No slide answer: the slide is unlike the slides") for i in at.info)
    assert not any(w.value.startswith("Slide answer:") for w in [*at.warning, *at.success])
    assert metric(at, "Flagged") == "0"
    opens = [b for b in at.button if b.key and b.key.startswith("slide-open-")]
    assert len(opens) > 5
    opens[0].click().run()
    assert not at.exception
    title = unescape(next(s.value for s in at.subheader if s.value.startswith("Tile detail")))
    x, y = (int(v) for v in title.split("x=")[1].replace(" y=", "").split(","))
    record(at, "slide-detail", "agree", "keratin pearls, not nodal tumour")
    rows = store.reviews_frame(url=app.url)
    assert len(rows) == 1 and rows["source"].iloc[0] == "slide" and rows["slide"].iloc[0] == f"cases/{SVS}"
    assert (int(rows["x"].iloc[0]), int(rows["y"].iloc[0]), int(rows["width"].iloc[0])) == (x, y, 187)


def test_the_queue_button_queues_the_slide_tiles_that_need_a_look(app):
    at = app("node.tiff")
    at.button(key="slide-queue").click().run()
    assert not at.exception and any("in the review queue" in s.value for s in at.success)
    queued = store.queue("dr. slide", url=app.url)
    assert len(queued) > 0 and set(queued["source"]) == {"slide"}
    items = [store.get_item(int(i), url=app.url) for i in queued["item_id"]]
    assert {item["slide"] for item in items} == {"node.tiff"}
    assert all(item["x"] % 96 == 0 and item["y"] % 96 == 0 and item["width"] == 96 for item in items)


def test_a_slide_without_resolution_asks_for_it_then_scores(app):
    at = app("nompp.tiff")
    assert any("nompp.tiff: has no resolution metadata" in e for e in errors(at)) and not at.exception
    at.number_input(key="slide-mpp").set_value(0.972).run()
    assert not errors(at) and int(metric(at, "Tiles scored")) > 0


def test_refusals_name_the_file_and_the_reason(app):
    cases = {"glass.png": None, "broken.svs": "broken.svs: is a TIFF file that cannot be read"}
    for slide, reason in cases.items():
        at = app(slide)
        if slide == "glass.png":
            at.number_input(key="slide-mpp").set_value(0.5).run()
            reason = "glass.png: no tissue found"
        assert not at.exception, slide
        assert any(reason in e for e in errors(at)), (slide, errors(at))
        assert not at.metric  # nothing was scored
    coarse = app("node.tiff")
    coarse.toggle(key="slide-mpp-override").set_value(True).run()
    coarse.number_input(key="slide-mpp-given").set_value(4.0).run()
    assert any("node.tiff: is scanned at 4 µm/px, coarser than" in e for e in errors(coarse))


def test_an_upload_over_the_limit_is_refused_by_the_server_too(app, monkeypatch):
    """The browser enforces the uploader's limit, but the page checks it again: a client need not be a browser."""
    monkeypatch.setenv("PATHREVIEW_SLIDE_UPLOAD_MB", "1")
    at = app("node.tiff")
    at.radio(key="slide-source").set_value("Upload").run()
    at.file_uploader(key="slide-upload").set_value(("big.svs", b"\0" * (2 * 2**20), "image/tiff")).run()
    assert not at.exception and not at.metric
    assert any("big.svs: is 2 MB; the limit for an uploaded slide is 1 MB" in e for e in errors(at)), errors(at)


def viewer_data(at) -> dict:
    """What the page sent the deep-zoom viewer on its last run."""
    import json

    (el,) = [e for e in at.get("bidi_component") if e.proto.component_name == "pathreview_slide_viewer"]
    return json.loads(el.proto.json)


def test_the_viewer_shows_the_slide_and_its_layers_and_follows_the_opened_tile(app):
    from test_deepzoom import Client

    from app.display.slide_layers import tile_at
    from app.inputs import slide_files as slide_cache
    from app.inputs.deepzoom_routes import ROUTES

    at = app("node.tiff")
    assert not at.exception and not errors(at)
    data = viewer_data(at)
    assert (data["width"], data["height"]) == (8 * 96, 6 * 96) and data["mpp"] == pytest.approx(0.972, abs=1e-3)
    sid = data["base"].split("/")[2]
    assert "node.tiff" not in data["base"] and len(sid) >= 20  # an opaque id, never the path
    done = slide_cache.cached(list(slide_cache._cache)[-1])
    frame = done.frame
    # red: the slide-level flags; orange: the rest of the tiles called tumour or needing review
    flagged = answer(frame, SlideLevel.from_card(read_card(DEFAULT_BUNDLE))).flagged
    assert len(data["boxes"]) == int((flagged | (frame.decision == "tumour") | frame.needs_review).sum()) > 0
    assert [b[4] for b in data["boxes"]].count("f") == min(flagged.sum(), len(data["boxes"])) > 0
    assert data["selected"] == -1
    for x, y, w, h, _ in data["boxes"]:  # each box is a scored tile of the tiles frame, in level-0 pixels
        assert ((frame.x == x) & (frame.y == y) & (frame.width == w) & (frame.height == h)).sum() == 1
    client = Client(ROUTES)
    assert client.get(f"{data['base']}/slide.dzi").status_code == 200
    for layer in ("heat", "tissue"):
        png = client.get(data[layer])
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    # the page's list opens a flagged tile: the viewer is told to centre that box
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("slide-open-"))).click().run()
    assert viewer_data(at)["selected"] == 0 and not at.exception
    x, y, w, h, _ = viewer_data(at)["boxes"][0]
    hit = tile_at(frame, x + w / 2, y + h / 2)  # where a click in the viewer lands
    assert (int(frame.loc[hit].x), int(frame.loc[hit].y)) == (x, y)
    assert tile_at(frame, -5, -5) is None
    # a flagged tile is one of the slide's top tiles: its P in the list is the second look's, and it says so
    opened = frame.loc[hit]
    assert opened.views == 8
    assert any(f"slide-map P(tumour) {opened.p:.3f} (second look, 8 views by the look head)" in c.value
               for c in at.caption)
    # ... and the tile detail scores it the same way, so the P a reader reviews is the P the list showed
    assert {m.label: m.value for m in at.metric}["P(tumour), 8-view TTA, look head"] == f"{opened.p:.3f}"


def test_a_recorded_resolution_is_shown_and_overriding_it_is_an_explicit_choice(app):
    """CMU-1 records 0.499 µm/px: no box overrides it unless the reader asks to (a 0.1 typed there gave 4 tiles)."""
    at = app(f"cases/{SVS}")
    assert not at.exception and not errors(at)
    assert [n.key for n in at.number_input if n.key.startswith("slide-mpp")] == []
    toggle = at.toggle(key="slide-mpp-override")
    assert "0.499 µm/px" in toggle.label and toggle.value is False
    scored = int(metric(at, "Tiles scored"))
    toggle.set_value(True).run()
    assert at.number_input(key="slide-mpp-given").value == pytest.approx(0.499, abs=1e-3)
    assert int(metric(at, "Tiles scored")) == scored  # the recorded value, until the reader changes it



def test_every_tile_to_look_at_can_be_shown_in_the_list(app):
    at = app("node.tiff")
    said = next(c.value for c in at.caption if " tiles to look at: " in c.value)
    n = int(said.split(" tiles to look at")[0])
    assert n > 24 and said.endswith("; the first 24 are shown.")  # half of this slide's tiles are tumour
    opens = lambda: sum(b.key.startswith("slide-open-") for b in at.button if b.key)  # noqa: E731
    assert opens() == 24
    at.button(key="slide-gallery-more").click().run()  # the slide has 48 tiles: all of the list is shown now
    assert not at.exception and opens() == n
    assert not [b for b in at.button if b.key == "slide-gallery-more"]
    assert any(c.value.startswith(f"{n} tiles to look at: ") and c.value.endswith(").") for c in at.caption)


def test_a_queued_slide_tile_opens_in_its_slide_and_a_namesake_does_not(app):
    at = app("node.tiff")
    at.button(key="slide-queue").click().run()
    at.switch_page("views/queue.py").run()
    assert not at.exception
    item = store.get_item(int(at.selectbox(key="queue-pick").value), url=app.url)
    at.button(key="queue-open-slide").click().run()  # the Slide page, the slide scored, that tile open
    assert not at.exception and at.selectbox(key="slide-name").value == "node.tiff"
    title = unescape(next(s.value for s in at.subheader if s.value.startswith("Tile detail")))
    assert f"node.tiff @ x={item['x']}, y={item['y']}" in title

    # an uploaded slide's tile, queued under the name of another file in the folder, is not opened in that file
    other = np.full((96, 96, 3), 200, np.uint8)
    store.add_items([store.ItemIn.from_tile(other, source="slide", name="node.tiff @ x=1, y=1", slide="node.tiff",
                                            x=1, y=1, width=96, height=96, model_sha256=item["model_sha256"], p=0.9,
                                            spread=0.0, threshold=0.2, needs_review=True, quality="ok", ood=None)],
                    url=app.url)
    at.switch_page("views/queue.py").run()
    namesake = int(store.queue("dr. slide", url=app.url).query("name == 'node.tiff @ x=1, y=1'").item_id.iloc[0])
    at.selectbox(key="queue-pick").select(namesake).run()
    assert not [b for b in at.button if b.key == "queue-open-slide"]
    assert any(c.value.startswith("Its slide cannot be opened here") for c in at.caption)
