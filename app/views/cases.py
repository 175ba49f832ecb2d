"""Page: the worklist of scored slides (those without a model answer first, then by slide score); open a case,
sign it out."""
import pandas as pd
import streamlit as st

from app import store
from app.display.text import md
from app.inputs import case_open
from app.review import reviewer, scored_by, signout
from app.review.drawn_for import pressed_on

NO_ANSWER = "no answer"
PICK = "cases-pick"
TABLE, TABLE_IDS = "cases-table", "cases-table-ids"
OPEN_FOR = "cases-open-for"  # (id, slide) of the case the "Open in the Slide page" button was last drawn for


def pick_row() -> None:
    """The row clicked in the worklist table becomes the picked case (the table's callback)."""
    rows = st.session_state[TABLE]["selection"]["rows"]
    if rows:
        st.session_state[PICK] = st.session_state[TABLE_IDS][rows[0]]


def pick(case_id: int) -> None:
    """Make ``case_id`` the picked case (a button's callback: it runs before the picker is drawn again)."""
    st.session_state[PICK] = case_id


def score_text(score: float | None) -> str:
    """A slide score for the page; a slide with no assessed tile has none."""
    return "—" if score is None or pd.isna(score) else f"{score:.3f}"


st.title("Cases")
st.markdown("Slides scored by a batch run (`python -m model_training.cli.slides … --out DIR --db URL`, or "
            "`python -m app.store add-cases DIR` afterwards): first those the model gives no answer on (unlike the "
            "slides it learned from, or no tile it could assess), then the one most likely to hold a metastasis. Open "
            "a case to see its heat map and tiles as scored, then sign it out: metastasis, no metastasis, or defer.")
reviewer.require_store()
wl = store.worklist()
if wl.empty:
    st.info("No scored slides in the review store yet. A batch run adds its slides when given this store: "
            "`--db` with the store's URL, or `PATHREVIEW_DB_URL` set as for the app.", icon=":material/inbox:")
    st.stop()

everything = wl  # the sign-out export is the lab's whole record, whichever model's cases are listed
scorers = scored_by.models(wl)
if len(scorers) > 1:
    model = st.selectbox("Scored by", scorers, key="cases-model",
                         help="The worklist holds slides scored by more than one model. A slide scored by two is a "
                              "case of each, with its own sign-outs; the model with the latest scoring comes first.")
    wl = scored_by.scored_by(wl, model)
show = st.multiselect("Status", ["new", "in review", "signed out"], ["new", "in review", "signed out"],
                      key="cases-status")
view = wl[wl.status.isin(show)]
# the table is drawn once the picked case is known (below), so that its selected row is that case
table = st.container()
counts = wl.status.value_counts()
c = st.columns([3, 1])
c[0].caption(" · ".join(f"{counts.get(s, 0)} {s}" for s in ("new", "in review", "signed out")))
c[1].download_button("Sign-outs (CSV)", lambda: store.signouts_csv(store.signout_history()),
                     file_name="pathreview_signouts.csv", mime="text/csv", key="cases-export", on_click="ignore",
                     icon=":material/download:", disabled=bool((everything.status == "new").all()),
                     help="Every sign-out recorded, deferrals and changed calls included, with its case: the slide "
                          "file and its sha256, the model and what it answered.")
if view.empty:
    table.caption("No case has the status chosen.")
    st.stop()

# No status in the labels: the picker keeps the label it showed when the case was picked, so a status in it would
# go stale after a sign-out. The status is shown under the case instead.
labels = {int(r.id): f"{r.slide} · score {score_text(r.slide_score)}" for r in view.itertuples()}
# coming back from the Slide page (the picker is drawn afresh), the case opened there is the one picked
ids, back = list(labels), st.session_state.get(case_open.OPEN_CASE)
first = ids.index(back) if back in ids and PICK not in st.session_state else 0
case_id = st.selectbox("Case", ids, index=first, format_func=labels.get, key=PICK)
case = store.get_case(case_id)
# the picked case's row is the table's selected one, however it was picked (its row, the picker, "Next case")
row_at = ids.index(case_id)
current = st.session_state.get(TABLE)
if current is None or list(current["selection"]["rows"]) != [row_at] or st.session_state.get(TABLE_IDS) != ids:
    st.session_state[TABLE] = {"selection": {"rows": [row_at]}}
st.session_state[TABLE_IDS] = ids
table.dataframe(pd.DataFrame({"slide": view.slide, "slide score": view.slide_score,
                              "model": view.decision.map(store.CALL_NAMES).fillna(NO_ANSWER),
                              "flagged tiles": view.tiles_flagged, "tiles": view.tiles_scored,
                              "status": view.status, "sign-out": view.call.map(store.CALL_NAMES).fillna("—"),
                              "by": view.reviewer.fillna("—")}),
                hide_index=True, key=TABLE, on_select=pick_row, selection_mode="single-row-required",
                column_config={"slide score": st.column_config.NumberColumn(format="%.3f")})
row = view[view.id == case_id].iloc[0]
m = st.columns(4)
point = ("no slide-level operating point: the model's card has no slide_level answer" if case["threshold"] is None
         else f"the operating point is {case['threshold']:.3f} (model card, slide_level)")
m[0].metric("Slide score", score_text(case["slide_score"]), help=f"P(metastasis); {point}.")
m[1].metric("Model", store.CALL_NAMES.get(case["decision"], NO_ANSWER))
m[2].metric("Flagged tiles", "—" if case["tiles_flagged"] is None else f"{case['tiles_flagged']:,}",
            help="Tiles the slide-level answer flags; none without one (a model whose card has no slide_level).")
m[3].metric("Tiles scored", f"{case['tiles_scored']:,}")
st.caption(f"Scored with {md(case['model'] or '?')} ({case['engine']}) · slide sha256 `{case['sha256'][:16]}…`")
if row.status == "new":
    st.markdown("Status: **new**, not signed out yet.")
else:
    said = f": “{md(row.comment, 300)}”" if isinstance(row.comment, str) and row.comment else ""
    st.markdown(f"Status: **{row.status}**, latest call {store.CALL_NAMES[row.call]} by {md(row.reviewer)}{said}")
withheld = (case["summary"].get("slide_level") or {}).get("withheld")
if case["decision"] is None and withheld:
    st.warning(f"No slide answer: {md(withheld.rstrip('.'), 600)}.", icon=":material/report:")
b = st.columns([1, 3])
pressed = pressed_on(OPEN_FOR, (case_id, case["slide"]))
if b[0].button("Open in the Slide page", key="cases-open", type="primary"):
    if pressed is not None and pressed[0] != case_id:
        st.warning(f"Nothing was opened: {md(pressed[1])} is no longer in the list shown (another reader's "
                   "sign-out may have moved it out).", icon=":material/sync_problem:")
    elif problem := case_open.open_case(case):
        st.error(md(problem, 600), icon=":material/block:")
following = signout.next_to_sign_out(view, case_id)
if following is not None:
    b[1].button(f"Next case to sign out: {md(following.slide, 120)}", key="cases-next", icon=":material/skip_next:",
                on_click=pick, args=(int(following.id),))
else:
    b[1].caption("Every other case listed here is signed out.")

st.subheader("Sign out")
signout.signout_form(case_id, case["slide"], "cases")
