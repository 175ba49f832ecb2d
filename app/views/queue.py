"""Page: the review queue: what is pending for me, what I have done, what others have reviewed."""
import streamlit as st

from app import store
from app.display.quality import call_with_reason
from app.display.text import md
from app.inputs import case_open
from app.review import detail, queueing, reviewer
from app.runtime import state
from model_training.slides.run import model_mpp

SOURCES = {"all sources": None, "uploads": "upload", "validation set": "dataset", "slides": "slide"}
STATUS = {"pending": "Pending for me", "done": "Done by me", "others": "Reviewed by others", "all": "All"}

st.title("Review queue")
st.markdown("Tiles that need a look (the model calls them tumour, or flags them for review, or would have "
            "called them tumour but did not assess them: out of focus, pen, unlike its training tissue) from "
            "uploads, the validation set and slides. Several readers may review the same tile; nobody sees "
            "another reader's "
            "decision here.")
reviewer.require_store()
who = reviewer.reviewer()
if who is None:
    st.info("Sign in, or enter your name in the sidebar, to see your queue.", icon=":material/badge:")
    st.stop()

c = st.columns([1, 2])
source = SOURCES[c[0].selectbox("Source", list(SOURCES), key="queue-source")]
show = c[1].radio("Show", list(STATUS), format_func=STATUS.get, horizontal=True, key="queue-status")
prog = store.progress(who, source=source)
st.progress(prog["done"] / prog["queued"] if prog["queued"] else 0.0,
            text=f"{prog['done']} of {prog['queued']} queued tile(s) reviewed by {md(who.name)} · "
                 f"{prog['pending']} pending")
items = store.queue(who, status=show, source=source)
if items.empty:
    st.info({"pending": "Nothing is pending for you here.", "done": "You have not reviewed any of these yet.",
             "others": "Nobody else has reviewed any of these yet."}.get(show, "The queue is empty.")
            + " Tiles join the queue from the Analyze and Validation pages.", icon=":material/inbox:")
    st.stop()

items = queueing.queue_order(items).reset_index(drop=True)
calls = [call_with_reason(d, q) for d, q in zip(items["model_decision"], items["quality"])]
items = items.assign(name=[queueing.short_name(n, s) for n, s in zip(items["name"], items["source"])])
table = items.assign(**{"P(tumour)": items["p"], "model decision": calls,
                        "needs review": items["needs_review"].astype(bool), "readers": items["reviews"],
                        "my decision": items["my_decision"]})
st.dataframe(table[["item_id", "name", "source", "P(tumour)", "model decision", "needs review", "readers",
                    "my decision"]], hide_index=True, key="queue-table",
             column_config={"P(tumour)": st.column_config.ProgressColumn("P(tumour)", min_value=0.0, max_value=1.0,
                                                                         format="%.3f")})
names = dict(zip(items["item_id"], items["name"]))
chosen = st.selectbox("Open an item", list(names), key="queue-pick",
                      format_func=lambda i: f"#{i} · {names[i]}")
if chosen is None:
    st.stop()
item = store.get_item(int(chosen))
if not item.get("tile_png"):
    st.warning(f"Item #{chosen} has no stored pixels (it was imported from an audit log).")
    st.stop()
tile = store.tile_from_png(item["tile_png"])
if store.pixel_sha256(tile) != item["pixel_sha256"]:
    st.error(f"The stored pixels of item #{chosen} do not match their sha256; it is not shown.")
    st.stop()
where = {"upload": f"Uploaded as {md(item['upload_name'])}",
         "dataset": f"Validation tile {md(item['dataset_id'])} of {md(item['dataset_root'])}",
         "slide": f"{md(item['slide'])} at level-0 x={item['x']}, y={item['y']} ({item['width']}×{item['height']})"}
mine = store.my_review(int(chosen), who)
others = int(items.loc[items["item_id"] == chosen, "reviews"].iloc[0]) - (mine is not None)
pred = state.predictor()
if item["source"] == "slide":
    name = case_open.folder_slide_of(item, model_mpp(pred.card))
    if name is None:
        st.caption("Its slide cannot be opened here: it is not in the slide folder, or the file there of that name "
                   "does not hold this tile.")
    elif st.button("Open in the Slide page at this tile", key="queue-open-slide", icon=":material/open_in_new:"):
        problem = case_open.open_tile(name, item["x"], item["y"], item["width"], item["height"], pred.sha256)
        if problem:
            st.error(md(problem, 600), icon=":material/block:")
st.divider()
detail.render(pred, tile, item["name"], key="queue", item_id=int(chosen),
              context=f"{where[item['source']]} · queued with P(tumour) {item['p']:.3f} at threshold "
                      f"{item['threshold']:.3f} · {others} other reader(s) reviewed it"
                      + ("" if mine else "; their decisions stay hidden") + ".")
