"""The Cases, Slide and Agreement pages on stored cases (AppTest against a real store): the worklist one model at
a time, a case opened in the Slide page with its stored tiles and signed out there, "Next case to sign out", the
page address naming the case, and the slide-level agreement view. The cases are small case slides built from real
validation patches and scored with the shipped bundle (``batch_dir`` and the others in conftest.py)."""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_user_text import unescape

from app import store
from app.display.text import md
from app.inputs import case_open
from app.store import Reviewer, add_batch, get_case, record_signout, signouts_frame, worklist
from model_training.bundle.contract import TILE
from model_training.bundle.files import DEFAULT_BUNDLE, read_card
from model_training.slides import scoring
from model_training.slides.batch import BatchJob, run_batch
from model_training.slides.reader import open_slide
from model_training.slides.run import model_mpp
from real_inputs import SVS

ROOT = Path(__file__).resolve().parent.parent


def test_slides_without_a_model_answer_lead_the_worklist(unlike_batch, app_session):
    at = app_session()  # the app creates its store
    add_batch(unlike_batch, url=app_session.url)
    wl = worklist(url=app_session.url)
    # the skin slide keeps a score, lower than the metastasis's, but no decision: it comes first all the same
    assert list(wl.slide) == [SVS, "case-0.tiff"] and wl.slide_score[0] < wl.slide_score[1]
    assert wl.decision.isna().tolist() == [True, False]
    at.switch_page("views/cases.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["model"]) == ["no answer", "metastasis"]
    assert any(w.value.startswith("No slide answer: This slide does not look like") for w in at.warning)
    # a pathologist signs both out: kappa with the model rests on the case the model answered, and the model's
    # own row counts the other as deferred
    for case in wl.itertuples():
        record_signout(case.id, Reviewer("dr. skin"), "no_metastasis" if case.slide == SVS else "metastasis",
                       url=app_session.url)
    at.switch_page("views/agreement.py").run()
    assert not at.exception
    rows = next(d.value for d in at.dataframe if "kappa with the model [95% CI]" in d.value.columns).set_index("reader")
    assert (rows.loc["dr. skin"].cases, rows.loc["dr. skin"].deferred) == (2, 0)
    assert rows.loc["model (slide decision)"].deferred == 1


def test_the_agreement_page_shows_pathologists_model_and_truth_on_slides(batch_dir, app_session):
    at = app_session()
    truth = {"case-0.tiff": 0, "case-1.tiff": 0, "case-2.tiff": 1}
    add_batch(batch_dir, truth, url=app_session.url)
    for case in worklist(url=app_session.url).itertuples():
        record_signout(case.id, Reviewer("dr. slides"), "metastasis" if truth[case.slide] else "no_metastasis",
                       url=app_session.url)
    at.switch_page("views/agreement.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "kappa with the model [95% CI]" in d.value.columns)
    rows = table.set_index("reader")
    assert list(rows.index) == ["dr. slides", "model (slide decision)"]
    reader = rows.loc["dr. slides"]
    assert (reader.cases, reader.deferred, reader["cases with known truth"]) == (3, 0, 3)
    assert reader["sensitivity [95% CI]"].startswith("1.000 [") and reader["specificity [95% CI]"].startswith("1.000 [")
    assert rows.loc["model (slide decision)"]["cases with known truth"] == 3
    # and on the model's slide-level ROC: the pathologist a point with its intervals, the model's decisions a mark
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    roc = next(f for f in figures if "slide-level ROC" in f["layout"]["title"]["text"])
    traces = {t.get("name"): t for t in roc["data"]}
    assert "3 case(s) with known truth" in roc["layout"]["title"]["text"]
    assert any(name and name.startswith("model (AUC ") for name in traces)
    readers = traces["readers"]
    assert readers["text"] == ["dr. slides"]
    assert (_values(readers["x"]), _values(readers["y"])) == ([0.0], [1.0])  # every call right
    model = rows.loc["model (slide decision)"]
    assert _values(traces["model decisions"]["y"]) == [
        pytest.approx(float(model["sensitivity [95% CI]"][:5]), abs=5e-4)]


def test_the_agreement_page_compares_one_model_at_a_time(batch_dir, tiny_batch, tiny_bundle, app_session):
    """The same slides scored by a second model are cases of their own: the page picks a model (the latest
    scoring's first) and its table holds that model's cases and the sign-outs made on them, not both pooled."""
    at = app_session()  # the session's store, migrated
    truth = {"case-0.tiff": 0, "case-1.tiff": 0, "case-2.tiff": 1}
    add_batch(batch_dir, truth, url=app_session.url)
    shipped = read_card(DEFAULT_BUNDLE)["name"]
    for case in worklist(url=app_session.url).itertuples():  # right on every case the shipped model scored
        record_signout(case.id, Reviewer("dr. slides"), "metastasis" if truth[case.slide] else "no_metastasis",
                       url=app_session.url)
    add_batch(tiny_batch, truth, url=app_session.url)
    tiny = read_card(tiny_bundle)["name"]
    assert tiny != shipped
    for case in worklist(url=app_session.url).query("model == @tiny").itertuples():  # wrong on every one
        record_signout(case.id, Reviewer("dr. slides"), "no_metastasis" if truth[case.slide] else "metastasis",
                       url=app_session.url)
    at.switch_page("views/agreement.py").run()
    assert not at.exception
    pick = at.selectbox(key="agree-slides-model")
    assert pick.options == [tiny, shipped] and pick.value == tiny

    def reader() -> pd.Series:
        table = next(d.value for d in at.dataframe if "kappa with the model [95% CI]" in d.value.columns)
        return table.set_index("reader").loc["dr. slides"]

    assert reader().cases == 3 and reader()["specificity [95% CI]"].startswith("0.000 [")
    pick.set_value(shipped).run()
    assert not at.exception
    row = reader()
    assert (row.cases, row["cases with known truth"]) == (3, 3)
    assert row["sensitivity [95% CI]"].startswith("1.000 [") and row["specificity [95% CI]"].startswith("1.000 [")


def test_the_cases_page_lists_one_models_cases_at_a_time(batch_dir, tiny_batch, tiny_bundle, app_session,
                                                          monkeypatch):
    """With the same slides scored by two models, the Cases page lists one model's cases (the latest scoring's
    model first) and the Slide page's "Next case to sign out" stays among the cases of the open case's model."""
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(batch_dir.parent))
    at = app_session()
    add_batch(batch_dir, url=app_session.url)
    add_batch(tiny_batch, url=app_session.url)
    wl = worklist(url=app_session.url)
    shipped, tiny = read_card(DEFAULT_BUNDLE)["name"], read_card(tiny_bundle)["name"]
    ids = {m: set(wl.id[wl.model == m]) for m in (shipped, tiny)}
    assert len(wl) == 6 and all(len(v) == 3 for v in ids.values())
    at.switch_page("views/cases.py").run()
    at.text_input(key="reviewer").input("dr. two").run()
    pick = at.selectbox(key="cases-model")
    assert pick.options == [tiny, shipped] and pick.value == tiny
    assert not at.exception  # the small model's card has no slide-level answer: its cases have no threshold

    def listed() -> set[int]:
        return set(at.session_state["cases-table-ids"])

    assert listed() == ids[tiny] and at.selectbox(key="cases-pick").value in ids[tiny]
    pick.set_value(shipped).run()
    assert not at.exception and listed() == ids[shipped] and at.selectbox(key="cases-pick").value in ids[shipped]
    at.button(key="cases-open").click().run()
    at.switch_page("views/slide.py").run()
    seen = {at.session_state[case_open.OPEN_CASE]}
    for _ in range(3):  # round the model's three cases and back to the first, never into the other model's
        at.button(key="slide-next-case").click().run()
        assert not at.exception
        seen.add(at.session_state[case_open.OPEN_CASE])
    assert seen == ids[shipped]
    here = at.session_state[case_open.OPEN_CASE]
    for other in ids[shipped] - {here}:  # the other cases of this model signed out: the message names the model
        record_signout(int(other), Reviewer("dr. else"), "no_metastasis", url=app_session.url)
    at.button(key="slide-next-case").click().run()
    assert not at.exception and at.session_state[case_open.OPEN_CASE] == here
    assert [unescape(i.value) for i in at.info] == [f"Every other case scored by {shipped} in the worklist is "
                                                    "signed out."]
    at.switch_page("views/cases.py").run()  # and a case of the model without a slide-level answer opens too
    at.selectbox(key="cases-model").set_value(tiny).run()
    # none of this model's cases is signed out, but the export is every sign-out: it stays on offer
    export = next(b for b in at.get("download_button") if b.proto.label == "Sign-outs (CSV)")
    assert not export.proto.disabled
    at.button(key="cases-open").click().run()
    at.switch_page("views/slide.py").run()
    assert not at.exception and at.session_state[case_open.OPEN_CASE] in ids[tiny]


def _values(data) -> list:
    """A Plotly trace's values as a list: numpy arrays travel as base64 typed arrays."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), data["dtype"]).tolist()
    return list(data)


def test_next_case_to_sign_out_walks_the_worklist_past_signed_out_cases(batch_dir, app_session, caplog):
    at = app_session()
    add_batch(batch_dir, url=app_session.url)
    ids = worklist(url=app_session.url).id.tolist()
    assert len(ids) == 3
    record_signout(ids[1], Reviewer("dr. next"), "no_metastasis", url=app_session.url)
    at.session_state[case_open.OPEN_CASE] = ids[2]  # back from the Slide page, where the last case was open
    at.switch_page("views/cases.py").run()
    assert at.selectbox(key="cases-pick").value == ids[2]
    assert at.session_state["cases-table"]["selection"]["rows"] == [2]  # the worklist's row of the picked case
    at.button(key="cases-next").click().run()  # from the last, the top of the list again
    assert not at.exception and at.selectbox(key="cases-pick").value == ids[0]
    assert at.session_state["cases-table"]["selection"]["rows"] == [0]
    # the picker was moved without Streamlit's warning on a widget given both a default and a state value
    assert "Session State API" not in caplog.text
    at.button(key="cases-next").click().run()  # the second is signed out: the third is next
    assert at.selectbox(key="cases-pick").value == ids[2]
    for case_id in (ids[0], ids[2]):
        record_signout(case_id, Reviewer("dr. next"), "defer", url=app_session.url)
    at.run()  # deferred cases are in review, still to sign out
    assert at.button(key="cases-next").label == f"Next case to sign out: {md(worklist(url=app_session.url).slide[0])}"
    record_signout(ids[0], Reviewer("dr. next"), "metastasis", url=app_session.url)
    at.run()
    assert not [b for b in at.button if b.key == "cases-next"]
    assert any(c.value == "Every other case listed here is signed out." for c in at.caption)


def test_a_case_opened_in_the_slide_page_is_signed_out_there_by_the_reviewer_named_on_the_cases_page(
        batch_dir, app_session, monkeypatch, caplog):
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(batch_dir.parent))
    at = app_session()
    add_batch(batch_dir, url=app_session.url)
    first = worklist(url=app_session.url).iloc[0]
    at.switch_page("views/cases.py").run()
    at.text_input(key="reviewer").input("dr. there").run()
    at.button(key="cases-open").click().run()  # the Slide page, the case as the batch scored it
    assert not at.exception and at.selectbox(key="slide-name").value == first.slide
    # the page's controls were set to the case's settings without Streamlit's warning on a widget given both a
    # default and a state value
    assert "Session State API" not in caplog.text
    # the name typed on the Cases page is still the reviewer after the page switch
    assert at.text_input(key="reviewer").value == "dr. there"
    assert not [w for w in at.warning if "Enter your name" in w.value]
    at.switch_page("views/slide.py").run()  # AppTest's later runs stay on the page it was last told
    # no call is chosen in advance: sent without one, the form records nothing and says why
    assert at.radio(key="slide-case-call").value is None
    at.button(key="FormSubmitter:slide-case-signout-Sign out as dr. there").click().run()
    assert not at.exception and signouts_frame(url=app_session.url).empty
    assert any("Choose the slide-level call" in e.value for e in at.error)
    at.radio(key="slide-case-call").set_value("no_metastasis")
    at.text_area(key="slide-case-comment").input("reactive nodes")
    at.button(key="FormSubmitter:slide-case-signout-Sign out as dr. there").click().run()
    rows = signouts_frame(url=app_session.url)
    assert rows[["slide", "reviewer", "call"]].values.tolist() == [[first.slide, "dr. there", "no_metastasis"]]
    case = worklist(url=app_session.url).set_index("id").loc[first.id]
    assert (case.status, case.comment) == ("signed out", "reactive nodes")
    assert at.expander[0].label == "Sign out this case (signed out)"
    said = [unescape(m.value) for m in at.expander[0].markdown if m.value.startswith("- ")]
    assert len(said) == 1 and re.fullmatch(r"- no metastasis by dr\. there, 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC: "
                                           r"“reactive nodes”", said[0])

    # on to the next case from the Slide page itself, as the batch scored it
    second = worklist(url=app_session.url).iloc[1]
    monkeypatch.setattr(scoring, "score_slide", refuse_scoring)
    at.button(key="slide-next-case").click().run()
    assert not at.exception and at.selectbox(key="slide-name").value == second.slide
    assert at.expander[0].label == "Sign out this case (new)"
    at.radio(key="slide-case-call").set_value("defer")
    at.button(key="FormSubmitter:slide-case-signout-Sign out as dr. there").click().run()
    third = worklist(url=app_session.url).iloc[2]
    record_signout(int(third.id), Reviewer("dr. else"), "no_metastasis", url=app_session.url)
    at.button(key="slide-next-case").click().run()  # the third was signed out elsewhere: only this one is left
    assert not at.exception and at.selectbox(key="slide-name").value == second.slide
    assert [unescape(i.value) for i in at.info] == ["Every other case in the worklist is signed out."]
    record_signout(int(third.id), Reviewer("dr. else"), "defer", url=app_session.url)
    at.button(key="slide-next-case").click().run()  # deferred again: still to sign out, and next
    assert not at.exception and at.selectbox(key="slide-name").value == third.slide


def refuse_scoring(*args, **kwargs):
    raise AssertionError("the slide was scored again")


def test_a_queued_tile_of_a_stored_case_opens_that_case_without_scoring_the_slide_again(
        batch_dir, app_session, monkeypatch):
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(batch_dir.parent))
    at = app_session(name="dr. queue")
    add_batch(batch_dir, url=app_session.url)
    case = get_case(int(worklist(url=app_session.url).id.iloc[0]), url=app_session.url)
    name = Path(case["path"]).name
    top = case["tiles"].sort_values("p").iloc[-1]
    x, y, w, h = (int(top[c]) for c in ("x", "y", "width", "height"))
    mpp = model_mpp(read_card(DEFAULT_BUNDLE))
    with open_slide(case["path"], target_mpp=mpp) as slide:
        tile = slide.read_scaled(x, y, w, h, mpp, (TILE, TILE))
    item_id = store.add_items([store.ItemIn.from_tile(
        tile, source="slide", name=f"{name} @ x={x}, y={y}", slide=name, x=x, y=y, width=w, height=h,
        model_sha256=case["model_sha256"], p=float(top.p), spread=0.0, threshold=0.2, needs_review=True,
        quality="ok", ood=None)], url=app_session.url)[0]
    monkeypatch.setattr(scoring, "score_slide", refuse_scoring)
    at.switch_page("views/queue.py").run()
    at.selectbox(key="queue-pick").select(item_id).run()
    at.button(key="queue-open-slide").click().run()  # the Slide page: the case's stored tiles, that tile open
    assert not at.exception and at.selectbox(key="slide-name").value == name
    title = unescape(next(s.value for s in at.subheader if s.value.startswith("Tile detail")))
    assert f"{name} @ x={x}, y={y}" in title
    assert at.expander[0].label == "Sign out this case (new)"  # opened as the case it is


def test_the_slide_page_address_names_the_case_on_view_and_a_bookmark_opens_it(batch_dir, app_session, monkeypatch):
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(batch_dir.parent))
    at = app_session(name="dr. link")
    add_batch(batch_dir, url=app_session.url)
    wl = worklist(url=app_session.url)
    at.switch_page("views/cases.py").run()
    at.button(key="cases-open").click().run()  # the top case, opened from the worklist
    assert at.query_params["case"] in (str(wl.id[0]), [str(wl.id[0])])
    at.switch_page("views/slide.py").run()
    at.selectbox(key="slide-name").select("case-1.tiff" if wl.slide[0] != "case-1.tiff" else "case-0.tiff").run()
    assert "case" not in at.query_params  # another slide on view: the address names no case

    # a bookmark of the second case, in a new session: that case, as the batch scored it
    monkeypatch.setattr(scoring, "score_slide", refuse_scoring)
    again = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=300)
    again.query_params.update({"case": str(wl.id[1]), "reviewer": "dr. link"})
    again.switch_page("views/slide.py").run()
    assert not again.exception and again.selectbox(key="slide-name").value == wl.slide[1]
    assert again.expander[0].label == "Sign out this case (new)"
    again.button(key="slide-next-case").click().run()  # on to the next case: the address follows
    assert not again.exception and again.selectbox(key="slide-name").value == wl.slide[2]
    assert again.query_params["case"] in (str(wl.id[2]), [str(wl.id[2])])
    # an address naming no case says so and opens nothing
    for bad in ("99999", "x"):
        other = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=300)
        other.query_params["case"] = bad
        other.switch_page("views/slide.py").run()
        assert not other.exception and "case" not in other.query_params
        assert f"There is no case {bad} in the review store." in [unescape(e.value) for e in other.error]


def test_a_case_whose_slide_file_changed_is_not_opened_as_that_case(batch_dir, app_session, monkeypatch, tmp_path):
    """A slide scanned again under the same name is another slide: its stored case (the old file's tiles and
    answer) is not opened on it, from the worklist or from an address, and the address's reason stays on the page
    after the new file is scored (the page reruns then)."""
    folder = tmp_path / "slides"
    folder.mkdir()
    slide = folder / "rescanned.tiff"
    shutil.copy(batch_dir.parent / "case-0.tiff", slide)
    run_batch([slide], BatchJob(str(DEFAULT_BUNDLE), "onnx-int8", str(tmp_path / "out")), progress=False)
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(folder))
    at = app_session(name="dr. rescan")
    add_batch(tmp_path / "out", url=app_session.url)
    case_id = int(worklist(url=app_session.url).id[0])
    shutil.copy(batch_dir.parent / "case-2.tiff", slide)  # the file replaced by another slide, same name
    at.switch_page("views/cases.py").run()
    at.button(key="cases-open").click().run()
    said = [unescape(e.value) for e in at.error]
    assert said == ["rescanned.tiff: the file has changed since the batch run scored it (its sha256 is no longer "
                    "the case's), so it cannot be signed out as this case; score it again with the slides command "
                    "(--db) to add the new file to the worklist"]
    assert case_open.OPEN_CASE not in at.session_state  # nothing was opened
    again = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=300)
    again.query_params["case"] = str(case_id)
    again.switch_page("views/slide.py").run()
    assert not again.exception and "case" not in again.query_params
    assert any("the file has changed since the batch run scored it" in unescape(e.value) for e in again.error)
    shutil.copy(batch_dir.parent / "case-0.tiff", slide)  # the scanned file back: the case opens again
    at.button(key="cases-open").click().run()
    assert not at.exception and at.session_state[case_open.OPEN_CASE] == case_id
