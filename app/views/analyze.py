"""Page 1: drop a batch of 96x96 tiles, score them with 8-view TTA, review any of them in detail."""
import streamlit as st

from app.display.text import md
from app.display.widget_keys import keyed_to
from app.inputs import drop_zone, example_tiles
from app.inputs.archives import MAX_ARCHIVE_MB
from app.inputs.uploads import MAX_FILE_MB, MAX_FILES, decode_uploads, results_table, table_csv
from app.review import detail, queueing
from app.runtime import scoring, state
from model_training.inference.predictor import REVIEW_MARGIN, REVIEW_SPREAD

BATCH = "analyze_batch"
EXAMPLES = "analyze_examples"  # session flag: score the shipped example tiles instead of a drop
FILES = "analyze_files"  # the last drop (drop_zone.Dropped); the component sends it only once
MAX_LISTED = 20

st.title("Analyze tiles")
st.markdown(f"Drop up to {MAX_FILES} H&E tiles of 96×96 pixels (PCam / Kaggle *Histopathologic Cancer "
            f"Detection* style, .tif .png .jpg, at most {MAX_FILE_MB} MB each), a folder of them, or a .zip "
            f"(up to {MAX_ARCHIVE_MB} MB). Each tile is scored on its eight dihedral views; the label concerns "
            "the centre 32×32 pixels.")
pred = state.predictor()


def show_examples(on: bool) -> None:
    st.session_state[EXAMPLES] = on


def clear_drop() -> None:
    st.session_state.pop(FILES, None)
    st.session_state.pop(BATCH, None)


crop = st.checkbox("Centre-crop larger images to 96×96", key="analyze-crop",
                   help="Otherwise images of another size are rejected; the Region view tiles larger images.")
new_drop = drop_zone.drop_zone("analyze-drop")
if new_drop is not None:  # a drop replaces the examples and the previous drop
    st.session_state[FILES] = new_drop
    st.session_state[EXAMPLES] = False
dropped: drop_zone.Dropped | None = st.session_state.get(FILES)
if dropped is None and not st.session_state.get(EXAMPLES):
    st.info("Drop tiles above to score them. Files stay in this browser session only.",
            icon=":material/upload_file:")
    if example_tiles.available():
        st.button("Try the example tiles", key="analyze-examples", icon=":material/science:",
                  on_click=show_examples, args=(True,))
        st.caption(example_tiles.NOTE)
    st.stop()

if dropped is not None:
    files = dropped.files
    signature = (dropped.drop_id, crop, pred.sha256)
    st.button(f"Clear the {len(dropped.files) + len(dropped.errors)} dropped file(s)", key="analyze-clear",
              icon=":material/close:", on_click=clear_drop)
else:
    files = example_tiles.files()
    signature = (tuple((name, len(data)) for name, data in files), crop, pred.sha256, "examples")
    st.info(example_tiles.NOTE, icon=":material/science:")
    st.button("Close the example tiles", key="analyze-examples-close",
              on_click=show_examples, args=(False,))
result = st.session_state.get(BATCH)
if result is None or result["signature"] != signature:
    batch = decode_uploads(files, crop=crop)
    if dropped is not None:
        batch.errors[:0] = dropped.errors
    bar = st.progress(0.0, text=f"Scoring {len(batch.records)} tile(s) × 8 views…")
    prediction = state.predict(pred, batch.tiles, tta=True, progress=scoring.throttled(bar.progress))
    bar.empty()
    table = results_table(batch.records, prediction)
    result = {"signature": signature, "batch": batch, "prediction": prediction,
              "table": table if dropped is not None else example_tiles.with_truth(table)}
    st.session_state[BATCH] = result
batch, prediction, table = result["batch"], result["prediction"], result["table"]

n_ok, n_bad = len(batch.records), len(batch.errors)
st.markdown(f"**{n_ok} tile(s) scored**, {n_bad} file(s) could not be used"
            + (f", {len(batch.skipped)} not processed" if batch.skipped else "") + ".")
for message in batch.errors[:MAX_LISTED]:
    st.error(md(message, 600), icon=":material/broken_image:")
if n_bad > MAX_LISTED:
    with st.expander(f"… and {n_bad - MAX_LISTED} more files that could not be used"):
        st.text("\n".join(batch.errors[MAX_LISTED:]))
if batch.wrong_size:
    st.info(f"{len(batch.wrong_size)} image(s) are not 96×96: tick **Centre-crop** above to score their "
            "centre, or open a larger image in the Region view.", icon=":material/crop:")
    st.page_link("views/region.py", label="Open the Region view", icon=":material/map:")
if batch.renamed:
    st.info("Duplicate file names were renamed: " + "; ".join(f"{md(a)} → {md(b)}" for a, b in batch.renamed),
            icon=":material/content_copy:")
if batch.skipped:
    st.warning(f"Only the first {MAX_FILES} tiles of a batch are processed; {len(batch.skipped)} were not "
               "(upload them as another batch).", icon=":material/warning:")
if not n_ok:
    st.stop()

only_review = st.toggle("Show only tiles that need review", key="analyze-only-review")
shown = table[table["needs review"]] if only_review else table
st.dataframe(shown, hide_index=True, key="analyze-table", column_config={
    "P(tumour)": st.column_config.ProgressColumn("P(tumour)", min_value=0.0, max_value=1.0, format="%.3f"),
    "TTA spread": st.column_config.NumberColumn(format="%.3f"),
    "needs review": st.column_config.CheckboxColumn("needs review"),
})
st.caption(f"Decision: tumour when P(tumour) ≥ {prediction.threshold:.3f} (the bundle's TTA threshold). "
           f"Needs review: within {REVIEW_MARGIN:.2f} of the threshold, or the eight views disagree (spread > "
           f"{REVIEW_SPREAD:.2f}). Click a header to sort.")
st.download_button("Download results (CSV)", table_csv(table, pred.sha256, prediction.threshold),
                   file_name="pathreview_scores.csv", mime="text/csv", icon=":material/download:",
                   on_click="ignore", key="analyze-download")

if dropped is not None:  # the example tiles are for trying the app, not for the team's queue
    queueing.upload_button(batch.records, prediction, pred)

st.divider()
order = table.sort_values("P(tumour)", ascending=False, kind="stable").index.tolist()
choice = st.selectbox("Open a tile (highest P first)", order, key=keyed_to("analyze-pick", signature),
                      format_func=lambda i: f"{table.at[i, 'file']} · P={table.at[i, 'P(tumour)']:.3f}")
if choice is not None:
    record = batch.records[int(choice)]
    # a shipped example tile is a dataset tile with a known label: a review of it keeps both
    origin = ({"source": "upload", "upload_name": record.upload_name} if dropped is not None else
              {"source": "dataset", "dataset_root": str(example_tiles.folder()), "dataset_id": record.name,
               "label": example_tiles.labels().get(record.name)})
    detail.render(pred, record.tile, record.name, key="analyze", scores=detail.tta_scores(prediction, int(choice)),
                  source=origin,
                  context=(f"Uploaded as {md(record.upload_name)}. " if record.upload_name != record.name else "")
                  + (record.note.capitalize() + ". " if record.note else "")
                  + (f"Example tile, known label: {table.at[choice, 'true label']}." if dropped is None else ""))
