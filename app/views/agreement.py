"""Page: how well readers agree with the model, with the ground truth and with each other."""
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import store
from app.display import reader_roc
from app.display.text import plain_html
from app.review import agreement, case_agreement, reviewer, scored_by

st.title("Agreement")
st.markdown("Current reviews only (a superseded review is replaced by its correction). A reader's call is "
            "the model decision they saw when they agree, the other one when they disagree; *unsure* is no "
            f"call. 95% CIs are bootstrap percentiles over items ({agreement.BOOT} resamples, fixed seed).")
reviewer.require_store()


def fmt(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def ci(row, k="kappa", lo="ci_low", hi="ci_high") -> str:
    """The value with its interval, or "—" alone when it is undefined."""
    return "—" if fmt(row[k]) == "—" else f"{fmt(row[k])} [{fmt(row[lo])}, {fmt(row[hi])}]"


cases = store.worklist()
if not cases.empty:
    st.subheader("Slides: pathologists, the model and the truth")
    signouts, scorers = store.signouts_frame(), scored_by.models(cases)
    if len(scorers) > 1:
        model = st.selectbox("Model", scorers, key="agree-slides-model",
                             help="The worklist holds slides scored by more than one model; each model's cases, "
                                  "and the sign-outs made on them, are compared on their own. The model with the "
                                  "latest scoring comes first.")
        signouts, cases = scored_by.scored_by(signouts, model), scored_by.scored_by(cases, model)
    sl = case_agreement.table(signouts, cases)
    st.dataframe(sl.assign(**{"kappa with the model [95% CI]": sl.apply(ci, axis=1),
                              "sensitivity [95% CI]": sl.apply(ci, axis=1, k="sensitivity", lo="sens_low",
                                                               hi="sens_high"),
                              "specificity [95% CI]": sl.apply(ci, axis=1, k="specificity", lo="spec_low",
                                                               hi="spec_high"),
                              "cases with known truth": sl.with_truth})
                 [["reader", "cases", "deferred", "kappa with the model [95% CI]", "cases with known truth",
                   "sensitivity [95% CI]", "specificity [95% CI]"]], hide_index=True, key="agree-slides")
    st.caption("Each pathologist's latest sign-out per case against the model's slide decision, and against the "
               "truth on cases where it is known (Wilson 95% CIs); *defer* is no call. The model's row: its "
               "slide decisions on every case in the worklist with a known truth; a slide it gives no answer on "
               "(unlike its training slides, or mostly not assessed) counts as deferred.")
    known = cases[cases.truth.notna() & cases.slide_score.notna()]
    if known.truth.nunique() == 2:
        own = sl[sl.reader == case_agreement.MODEL].iloc[0]
        st.plotly_chart(reader_roc.readers_on_roc(
            known.truth, known.slide_score, sl[sl.reader != case_agreement.MODEL],
            f"Pathologists on the model's slide-level ROC ({len(known)} case(s) with known truth)",
            ("model decisions", own.sensitivity, own.specificity)), key="agree-slides-roc")
        st.caption("The model's ROC is drawn from the slide scores of the cases with a known truth; each "
                   "pathologist is a point with 95% CIs, from their latest sign-out of those cases, and the open "
                   "circle (model decisions) is the model's own slide decisions at its operating point.")

reviews = store.reviews_frame()
if reviews.empty:
    st.info("No tile reviews recorded yet.", icon=":material/inbox:")
    st.stop()

st.subheader("Readers and the model")
vm = agreement.vs_model(reviews)
st.dataframe(vm.assign(**{"Cohen's kappa [95% CI]": vm.apply(ci, axis=1)})
             [["reader", "reviews", "agree", "disagree", "unsure", "n", "Cohen's kappa [95% CI]"]],
             hide_index=True, key="agree-model")
st.caption("n: reviews with a call (agree or disagree) behind the kappa. —: kappa is undefined when the reader's "
           "calls or the model's are the same on every tile (say, the model called every queued tile tumour).")

st.subheader("Readers and the ground truth (validation tiles)")
vt = agreement.vs_truth(reviews)
labelled = reviews[reviews["label"].notna()].drop_duplicates("item_id")
if vt.empty:
    st.info("No reviewed item has a ground-truth label yet: queue validation tiles from the Validation browser.")
else:
    st.dataframe(vt.assign(**{"sensitivity [95% CI]": vt.apply(ci, axis=1, k="sensitivity", lo="sens_low",
                                                               hi="sens_high"),
                              "specificity [95% CI]": vt.apply(ci, axis=1, k="specificity", lo="spec_low",
                                                               hi="spec_high")})
                 [["reader", "n", "tumour", "normal", "sensitivity [95% CI]", "specificity [95% CI]"]],
                 hide_index=True, key="agree-truth")
    fig = reader_roc.readers_on_roc(labelled["label"], labelled["item_p"], vt,
                                    f"Readers on the model's ROC ({len(labelled)} labelled item(s) in the store)")
    st.plotly_chart(fig, key="agree-roc")
    st.caption("The model's ROC is drawn from its scores of the labelled items in the store, the tiles the "
               "readers were given; readers are points with their 95% CIs.")

st.subheader("Between readers")
br = agreement.between_readers(reviews)
if br.empty:
    st.info("Agreement between readers needs two readers who reviewed the same items.")
else:
    st.dataframe(br.assign(**{"agreement": br["agreement"].map(fmt),
                              "Cohen's kappa [95% CI]": br.apply(ci, axis=1)})
                 [["reader_a", "reader_b", "n", "agreement", "Cohen's kappa [95% CI]"]],
                 hide_index=True, key="agree-pairs")
    st.caption("n: items both readers called.")
    heat = pd.concat([br, br.rename(columns={"reader_a": "reader_b", "reader_b": "reader_a"})])
    readers = sorted(set(heat["reader_a"]))
    shown = [plain_html(r, 40) for r in readers]  # tick labels: HTML is rendered, long names crowd the map
    z = heat.pivot_table(index="reader_a", columns="reader_b", values="kappa").reindex(index=readers,
                                                                                      columns=readers)
    st.plotly_chart(go.Figure(go.Heatmap(z=z.to_numpy(), x=shown, y=shown, zmin=-1, zmax=1,
                                         colorscale="RdBu", text=np.vectorize(fmt)(z.to_numpy()),
                                         texttemplate="%{text}")).update_layout(
        title="Cohen's kappa between readers", height=360), key="agree-heat")
fl = agreement.fleiss_all(reviews)
if fl is not None:
    m = st.columns(2)
    m[0].metric(f"Fleiss' kappa, {fl['readers']} readers", fmt(fl["kappa"]),
                help=f"On the {fl['n']} item(s) every reader called; 95% CI "
                     f"[{fmt(fl['ci_low'])}, {fmt(fl['ci_high'])}].")
    m[1].metric(f"Krippendorff's alpha, {fl['readers']} readers", fmt(fl["alpha"]),
                help=f"On the {fl['alpha_n']} item(s) at least two readers called, so items a reader skipped "
                     f"still count; 95% CI [{fmt(fl['alpha_low'])}, {fmt(fl['alpha_high'])}].")
    st.caption(f"Fleiss' kappa on {fl['n']} item(s) called by all {fl['readers']} readers: {fmt(fl['kappa'])} "
               f"[95% CI {fmt(fl['ci_low'])}, {fmt(fl['ci_high'])}]. Krippendorff's alpha on the {fl['alpha_n']} "
               f"item(s) at least two readers called: {fmt(fl['alpha'])} [95% CI {fmt(fl['alpha_low'])}, "
               f"{fmt(fl['alpha_high'])}].")

st.subheader("Export")
c = st.columns(2)
c[0].download_button("Agreement tables (CSV)", agreement.tables_csv(vm, vt, br, fl),
                     file_name="pathreview_agreement.csv", mime="text/csv", key="agree-export", on_click="ignore")
c[1].download_button("All current reviews (CSV)", store.export_csv(reviews), file_name="pathreview_reviews_all.csv",
                     mime="text/csv", key="agree-export-reviews", on_click="ignore")
