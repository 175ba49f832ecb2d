"""Page 3: browse a labeled dataset scored by the model: TP/FP/FN/TN at a threshold, tiles, EDA."""
import numpy as np
import plotly.express as px
import streamlit as st

from app.display.text import md
from app.inputs import datasets, example_tiles, roots
from app.review import detail, queueing
from app.runtime import state
from model_training.data.decode import TileError
from model_training.data.sources import DatasetError

PER_PAGE = 24
COLS = 6
SELECTED = "val-selected"
PATH, EXAMPLES = "Dataset path", "Example tiles"

st.title("Validation browser")
pred = state.predictor()

configured, why_not = datasets.configured()
choices = [PATH] + ([EXAMPLES] if example_tiles.available() else [])
with st.sidebar:
    st.markdown("**Dataset**")
    use = st.radio("Browse", choices, index=0 if configured else len(choices) - 1, key="val-source",
                   help="The example tiles ship with PathReview; they are the default when no dataset is set.")
    if use == EXAMPLES:
        path = str(example_tiles.folder())
    else:
        path = st.text_input("Dataset path", value=datasets.default_path(), key="val-path",
                             help="A dataset root (its valid/ split is used), a Kaggle image folder with its "
                                  "CSV, class folders 0/ and 1/, or a PCam *_x.h5 file. Default: "
                                  "$PATHREVIEW_DATA.")
    n_max = int(st.number_input("Tiles to score (class-stratified sample)", 50, datasets.MAX_TILES,
                                datasets.DEFAULT_MAX_TILES, step=50, key="val-n"))
    tta = st.checkbox("8-view TTA (8× slower)", key="val-tta")

if use == EXAMPLES:
    st.info((f"No dataset configured ({why_not}): browsing the example tiles instead. Set `PATHREVIEW_DATA` "
             "or choose *Dataset path* in the sidebar for a real validation set. " if not configured else "")
            + example_tiles.NOTE, icon=":material/science:")
elif not path.strip():
    st.info("Set `PATHREVIEW_DATA` or type a dataset path in the sidebar.", icon=":material/folder_open:")
    st.stop()
try:
    roots.check(path)  # before anything is cached under this path
    source = datasets.load(path.strip(), n_max)
except roots.PathRefused as exc:
    st.error(f"This folder is not opened: {md(exc, 600)}", icon=":material/block:")
    st.stop()
except DatasetError as exc:
    st.error(f"This dataset cannot be opened: {md(exc, 600)}", icon=":material/folder_off:")
    st.stop()
described = example_tiles.NAME if use == EXAMPLES else source.description
df = datasets.scored(path.strip(), n_max, tta, pred.sha256, pred)
if df.empty:
    st.error("None of the tiles in this dataset could be read.")
    st.stop()

labeled = bool((df["label"] >= 0).all())
model_thr = pred.threshold(tta)
if labeled and df["label"].nunique() == 2:
    st.session_state[datasets.SCORED] = {"name": f"{described} ({len(df)} tiles, "
                                                 f"{'TTA' if tta else 'single view'})",
                                         "y": df["label"].to_numpy(), "p": df["p"].to_numpy(),
                                         "threshold": model_thr}

state.threshold_slider_follows("val-thr", model_thr)
thr = st.slider("Threshold", 0.0, 1.0, step=0.001, format="%.3f", key="val-thr",
                on_change=lambda: state.set_threshold(st.session_state["val-thr"], model_thr),
                help=f"The model's operating threshold is {model_thr:.3f} ({'TTA' if tta else 'single view'}).")
df = df.assign(outcome=datasets.outcome(df["label"].to_numpy(), df["p"].to_numpy(), thr))
counts = df["outcome"].value_counts()
st.caption(f"{described} · {len(df)} tiles scored · "
           + " · ".join(f"{k} {int(counts.get(k, 0))}" for k in (datasets.OUTCOMES if labeled else
                                                                 ("pred +", "pred −"))))
queueing.dataset_button(source, df, path.strip(), pred, tta, model_thr)
problems = list(dict.fromkeys(str(p) for p in source.problems))
if problems:
    with st.expander(f"{len(problems)} problem(s) found in the dataset (skipped)"):
        st.text("\n".join(problems[:500]))


def tile(i: int):
    try:
        return source.get(int(i))
    except TileError as exc:
        st.warning(md(exc, 600))
        return None


browse, eda = st.tabs(["Browse tiles", "Data overview"])
with browse:
    c = st.columns([2, 2, 1])
    kinds = datasets.OUTCOMES if labeled else ("pred +", "pred −")
    pick = c[0].multiselect("Show", kinds, default=list(kinds), key="val-filter")
    sorts = [s for s in datasets.SORTS if tta or "spread" not in s]
    how = c[1].selectbox("Sort by", sorts, key="val-sort")
    view = datasets.sort_frame(df[df["outcome"].isin(pick)], how, thr)
    pages = max(1, -(-len(view) // PER_PAGE))
    page = int(c[2].number_input(f"Page (of {pages})", 1, pages, 1, key="val-page"))
    chunk = view.iloc[(page - 1) * PER_PAGE: page * PER_PAGE]
    if chunk.empty:
        st.info("No tiles match this filter.")
    cols = st.columns(COLS)
    for k, row in enumerate(chunk.itertuples()):
        with cols[k % COLS]:
            t = tile(row.i)
            if t is not None:
                st.image(t, width=96, caption=f"{row.outcome} · P={row.p:.3f}")
            if st.button("Open", key=f"val-open-{row.i}", width="stretch"):
                st.session_state[SELECTED] = int(row.i)
    chosen = st.session_state.get(SELECTED)
    if chosen is not None and chosen in set(df["i"]):
        row = df[df["i"] == chosen].iloc[0]
        t = tile(chosen)
        if t is not None:
            st.divider()
            truth = {1: "tumour", 0: "normal"}.get(int(row["label"]), "unlabeled")
            detail.render(pred, t, str(row["id"]), key="validation",
                          source={"source": "dataset", "dataset_root": str(roots.check(path)),
                                  "dataset_id": str(row["id"]),
                                  "label": int(row["label"]) if row["label"] >= 0 else None},
                          context=f"Ground truth: {truth} · {row['outcome']} at threshold {thr:.3f} · "
                                  f"P(tumour) in the browser {row['p']:.3f} ({'TTA' if tta else 'single view'})")

with eda:
    names = {0: "normal (0)", 1: "tumour (1)", -1: "unlabeled"}
    dist = df["label"].map(names).value_counts().rename_axis("label").reset_index(name="tiles")
    c = st.columns(2)
    c[0].plotly_chart(px.bar(dist, x="label", y="tiles", text="tiles", title="Label distribution (sample)",
                             height=360), key="val-labels")
    c[1].plotly_chart(px.histogram(df.assign(label=df["label"].map(names)), x="p", color="label", nbins=40,
                                   barmode="overlay", range_x=[0, 1], height=360,
                                   title="P(tumour) by true class"), key="val-hist")
    rng = np.random.default_rng(datasets.SEED)
    for label in sorted(df["label"].unique(), reverse=True):
        ids = df.loc[df["label"] == label, "i"].to_numpy()
        shown = rng.choice(ids, min(12, len(ids)), replace=False)
        st.markdown(f"**Sample of {names.get(int(label), label)} tiles**")
        grid = st.columns(12)
        for k, i in enumerate(shown):
            t = tile(i)
            if t is not None:
                grid[k].image(t, width=80)
