"""The Cases page's actions when the store moves under them (AppTest against a real store): a sign-out sent, or
"Open in the Slide page" pressed, as another reader's sign-out moves the case out of the list shown acts on no
other case; a sign-out landing while the form is open is not overridden unseen; a call chosen for one case does
not carry over to the next. The cases are small case slides built from real validation patches and scored with
the shipped bundle (``batch_dir`` in conftest.py)."""
from __future__ import annotations

from test_user_text import unescape

from app.inputs import case_open
from app.store import Reviewer, add_batch, record_signout, signouts_frame, worklist


def test_a_sign_out_sent_as_its_case_leaves_the_list_is_not_recorded_on_another(batch_dir, app_session):
    """The worklist shows new cases only; while a pathologist fills in the form of one, another reader signs it
    out, so on sending it has left the list and another case is shown: nothing is recorded on that other case
    (nor on the first), and the page says so. A call chosen for one case is not carried over to the next."""
    at, ids, slides = _second_of_new_cases_open(batch_dir, app_session)
    at.radio(key="cases-call").set_value("no_metastasis")
    at.text_area(key="cases-comment").input("reactive")
    record_signout(ids[1], Reviewer("dr. two"), "metastasis", url=app_session.url)
    at.button(key="FormSubmitter:cases-signout-Sign out as dr. one").click().run()
    assert not at.exception
    rows = signouts_frame(url=app_session.url)
    assert rows[["slide", "reviewer", "call"]].values.tolist() == [[slides[ids[1]], "dr. two", "metastasis"]]
    assert at.selectbox(key="cases-pick").value != ids[1]
    assert [unescape(e.value) for e in at.error] == [
        f"Nothing was recorded: that sign-out was for {slides[ids[1]]}, which is no longer the case shown (another "
        f"reader's sign-out may have moved it out of the list). Open {slides[ids[1]]} again to see its sign-outs "
        "and add yours."]
    # a call chosen for one case, then another case picked: its form starts empty
    at.radio(key="cases-call").set_value("metastasis")
    at.text_area(key="cases-comment").input("not sent")
    shown = at.selectbox(key="cases-pick").value
    at.selectbox(key="cases-pick").set_value(next(i for i in ids if i not in (ids[1], shown))).run()
    assert at.radio(key="cases-call").value is None and at.text_area(key="cases-comment").value == ""
    assert len(signouts_frame(url=app_session.url)) == 1


def test_a_sign_out_sent_after_another_readers_is_not_recorded_unseen(batch_dir, app_session):
    """Two pathologists on one case: the second's sign-out arrives while the first's form is open. The first's
    press records nothing and names the other call, now listed; sent again, it is recorded."""
    at = app_session(name="dr. one")
    add_batch(batch_dir, url=app_session.url)
    case_id = int(worklist(url=app_session.url).id[0])
    at.switch_page("views/cases.py").run()
    assert at.selectbox(key="cases-pick").value == case_id
    at.radio(key="cases-call").set_value("no_metastasis")
    record_signout(case_id, Reviewer("dr. two"), "metastasis", url=app_session.url)
    at.button(key="FormSubmitter:cases-signout-Sign out as dr. one").click().run()
    assert not at.exception
    assert signouts_frame(url=app_session.url).reviewer.tolist() == ["dr. two"]
    assert [unescape(e.value) for e in at.error] == [
        "Nothing was recorded: dr. two signed this case out (metastasis) while your form was open; every sign-out "
        "is listed above. Send yours again if it stands."]
    assert any(unescape(m.value).startswith("- metastasis by dr. two, ") for m in at.markdown)
    at.radio(key="cases-call").set_value("no_metastasis")
    at.button(key="FormSubmitter:cases-signout-Sign out as dr. one").click().run()
    assert not at.error
    rows = signouts_frame(url=app_session.url)
    assert rows[["reviewer", "call"]].values.tolist() == [["dr. two", "metastasis"], ["dr. one", "no_metastasis"]]


def test_open_pressed_as_its_case_leaves_the_list_opens_nothing(batch_dir, app_session, monkeypatch):
    """"Open in the Slide page" pressed for a case that another reader's sign-out has just moved out of the list
    shown opens no other case in its place, and says so."""
    monkeypatch.setenv("PATHREVIEW_SLIDES", str(batch_dir.parent))
    at, ids, slides = _second_of_new_cases_open(batch_dir, app_session)
    record_signout(ids[1], Reviewer("dr. two"), "metastasis", url=app_session.url)
    at.button(key="cases-open").click().run()
    assert not at.exception and case_open.OPEN_CASE not in at.session_state
    assert [unescape(w.value) for w in at.warning if w.value.startswith("Nothing")] == [
        f"Nothing was opened: {slides[ids[1]]} is no longer in the list shown (another reader's sign-out may have "
        "moved it out)."]
    shown = at.selectbox(key="cases-pick").value
    at.button(key="cases-open").click().run()  # the case shown now opens as asked
    assert not at.exception and at.session_state[case_open.OPEN_CASE] == shown != ids[1]


def _second_of_new_cases_open(batch_dir, app_session):
    """A session of "dr. one" on the Cases page, the worklist filtered to new cases and its second case picked:
    (AppTest, case ids in worklist order, slide by case id)."""
    at = app_session(name="dr. one")
    add_batch(batch_dir, url=app_session.url)
    wl = worklist(url=app_session.url)
    at.switch_page("views/cases.py").run()
    at.multiselect(key="cases-status").set_value(["new"]).run()
    at.selectbox(key="cases-pick").set_value(int(wl.id[1])).run()
    return at, wl.id.tolist(), dict(zip(wl.id, wl.slide))
