"""Page: open a whole slide in the deep-zoom viewer, see its tissue and heat map, review the tiles to look at."""
import streamlit as st

from app import store
from app.display import slide_layers
from app.display.quality import QUALITY_WORDS
from app.display.slide_answer import operating_point_caption, size_caption
from app.display.text import md
from app.inputs import case_open, deepzoom, slide_files
from app.inputs.slide_viewer import slide_viewer
from app.review import detail, queueing, signout
from app.runtime import state
from model_training.bundle.contract import TILE
from model_training.slides.answer import POSITIVE, SlideLevel, answer
from model_training.slides.grid import MIN_TISSUE, STRIDES
from model_training.slides.reader import SlideError, open_slide, recorded_mpp
from model_training.slides.run import model_mpp
from model_training.slides.scoring import overview, score_slide
from model_training.slides.tissue import TissueParams

FOLDER, UPLOAD = "Slide folder", "Upload"
TILE_OPEN = "slide_tile"  # (slide key, frame index, where it was opened: "viewer" or "list") of the opened tile
UPLOADED = "slide_upload"  # (upload file id, where the server keeps it)
VIEW_IDS = "slide_view_ids"  # {slide path: the opaque id its tiles are served under, issued to this session}
ATTACHED = "slide_view_layers"  # {id: (slide key, heat overlay name, tissue overlay name)}
GALLERY = 24  # tiles of the list shown at first, and added by each "Show more"
SHOWN = "slide_gallery_shown"  # {slide key: how many of its list are shown}

st.title("Slide")
st.markdown("Open a whole-slide image: PathReview finds the tissue, scores every tissue tile at the model's "
            "resolution and shows where it sees tumour. Zoom from the whole slide to full resolution, click any "
            "tile or step through the tiles to look at (keys n / p), and record your review of each.")
pred = state.predictor()
level = SlideLevel.from_card(pred.card)
target = model_mpp(pred.card)
root = slide_files.slides_root()
# a case named in the page's address (a bookmark, a shared link) opens as the Cases page opens it
case_open.follow_address()

with st.sidebar:
    st.markdown("**Slide**")
    sources = ([FOLDER] if root else []) + [UPLOAD]
    use = st.radio("Open from", sources, key="slide-source")
    stride = st.radio("Stride", STRIDES, horizontal=True, key="slide-stride", format_func=lambda s: f"{s} px",
                      help="48 px overlaps the tiles: a finer map, four times the tiles to score.")
    tta = st.checkbox("8-view TTA (8× slower)", key="slide-tta")
    # The defaults go in the session state, not the widgets: an opened case sets these keys to the settings it
    # was scored with, and a widget given both a default and a state value draws Streamlit's warning.
    for key, default in (("slide-minsat", TissueParams.min_saturation), ("slide-maxsat", TissueParams.max_saturation),
                         ("slide-mintissue", MIN_TISSUE)):
        st.session_state.setdefault(key, default)
    with st.expander("Tissue detection"):
        min_sat = st.slider("Minimum saturation", 0.0, 0.3, step=0.01, key="slide-minsat",
                            help="Pixels paler than this are never tissue.")
        max_sat = st.slider("Threshold cap", 0.05, 0.5, step=0.01, key="slide-maxsat",
                            help="Otsu's threshold on saturation, never above this (lower keeps paler tissue).")
        min_tissue = st.slider("Tissue per tile", 0.05, 1.0, step=0.05, key="slide-mintissue",
                               help="A tile is scored when at least this fraction of it is tissue.")

if use == FOLDER:
    names = slide_files.list_slides(root)
    if not names:
        st.info(f"No slides in the slide folder {root}.", icon=":material/folder_open:")
        st.stop()
    name = st.selectbox("Slide", names, key="slide-name")
    try:
        path = slide_files.resolve_in(root, name)
    except slide_files.SlideAccessError as exc:
        st.error(md(exc, 600), icon=":material/block:")
        st.stop()
else:
    if root is None:
        st.caption(f"The operator has not configured a slide folder (`{slide_files.SLIDES_ENV}`); upload a slide.")
    limit = slide_files.upload_limit_mb()
    up = st.file_uploader(f"Slide file (at most {limit} MB)", type=slide_files.SLIDE_TYPES, key="slide-upload",
                          max_upload_size=limit)
    if up is None:
        st.info("Drop a slide above (SVS, TIFF, NDPI, … or a PNG/JPEG at known resolution).",
                icon=":material/upload_file:")
        st.stop()
    if up.size > limit * 2**20:  # the browser enforces the limit too, but a client need not be a browser
        st.error(f"{md(up.name)}: is {up.size / 2**20:.0f} MB; the limit for an uploaded slide is {limit} MB",
                 icon=":material/block:")
        st.stop()
    kept = st.session_state.get(UPLOADED)
    if kept is None or kept[0] != up.file_id:  # hash and store a large upload once, not on every rerun
        kept = (up.file_id, slide_files.save_upload(up.name, up.getvalue()))
        st.session_state[UPLOADED] = kept
    path = kept[1]
    name = up.name
allowed = root if use == FOLDER else slide_files.upload_dir()

case_open.keep_address(path)
if address_problem := case_open.address_problem(name):
    st.error(md(address_problem, 600), icon=":material/link_off:")
shown = name.split("/")[-1]  # what the user knows the slide as (uploads are stored under a hashed name)
shown_md = md(shown)
recorded = recorded_mpp(path)
if recorded is None:
    mpp_in = st.number_input("Resolution (µm per pixel): this slide does not record it", min_value=0.0,
                             max_value=20.0, value=0.0, step=0.01, format="%.3f", key="slide-mpp",
                             help="The scanner's resolution for this slide; the tiles are cut at the model's.")
elif st.toggle(f"Override the resolution the slide records ({recorded:.3f} µm/px)", key="slide-mpp-override",
               help="Only when the slide's metadata is known to be wrong: every tile's size depends on it."):
    mpp_in = st.number_input("Resolution (µm per pixel), instead of the recorded one", min_value=0.001,
                             max_value=20.0, value=recorded, step=0.01, format="%.3f", key="slide-mpp-given")
else:
    mpp_in = None
params = TissueParams(min_saturation=min_sat, max_saturation=max_sat)
try:
    slide = open_slide(path, mpp_in or None, target_mpp=target)
except SlideError as exc:
    st.error(f"{shown_md}: {md(exc.reason, 600)}", icon=":material/broken_image:")
    st.stop()

def view_id(path) -> str:
    """The opaque id this session's viewer names the slide by (issued once per slide and session)."""
    ids = st.session_state.setdefault(VIEW_IDS, {})
    sid = ids.get(str(path))
    if not deepzoom.known(sid):
        sid = ids[str(path)] = deepzoom.issue(path, allowed)
    return sid


def view_layers(sid: str, key: tuple, ov, frame) -> tuple[str, str]:
    """The names of the heat-map and tissue overlays of a scored slide, attached to ``sid`` once."""
    held = st.session_state.setdefault(ATTACHED, {})
    if held.get(sid, (None,))[0] != key:
        tissue = slide_layers.tissue_png(ov.mask)
        heat = slide_layers.heat_png(ov.thumb.shape[:2], ov.scale, frame, ov.grid.step0)
        names = slide_layers.name_of("heat", heat), slide_layers.name_of("tissue", tissue)
        deepzoom.attach(sid, names[0], heat)
        deepzoom.attach(sid, names[1], tissue)
        held[sid] = (key, *names)
    return held[sid][1], held[sid][2]


def describe(ov) -> None:
    w, h = slide.dimensions
    st.caption(f"**{shown_md}** · {w:,}×{h:,} px · {slide.mpp:.3f} µm/px ({slide.mpp_source}) · "
               f"{len(slide.levels)} level(s) · read at level {slide.level_for(target).index} and resampled to "
               f"the model's {target:.3f} µm/px · {ov.tissue_mm2:.1f} mm² of tissue · {ov.grid.n:,} tiles")


def show_opened(frame, i) -> None:
    """The detail view of the opened tile (frame index ``i``), if any."""
    if i is None or i not in frame.index:
        return
    row = frame.loc[i]
    x, y = int(row.x), int(row.y)
    tile = slide.read_scaled(x, y, int(row.width), int(row.height), target, (TILE, TILE))
    looked = not tta and int(row.get("views", 1)) == 8  # one of the slide's top tiles, scored again
    how = "TTA" if tta else ("second look, 8 views" + (" by the look head" if pred.look_head else "")
                             if looked else "single view")
    detail.render(pred, tile, f"{name} @ x={x}, y={y}", key="slide-detail",
                  context=f"Slide {shown_md}, level-0 box x={x}, y={y}, {int(row.width)}×{int(row.height)} "
                          f"px; slide-map P(tumour) {row.p:.3f} ({how}).",
                  source={"source": "slide", "slide": name, "x": x, "y": y, "width": int(row.width),
                          "height": int(row.height)}, look=looked)


with slide:
    key = slide_files.cache_key(path, pred.sha256, slide.mpp, stride, tta, params, min_tissue)
    done = slide_files.cached(key)
    try:
        sid = view_id(path)
        size = deepzoom.info(sid)
    except deepzoom.NotServed as exc:
        st.error(f"{shown_md}: cannot be shown in the viewer ({md(exc, 300)})", icon=":material/broken_image:")
        st.stop()
    head = st.container()  # what the slide is, once its overview is known
    top = st.container()  # the scores once known; the viewer keeps its place below, so it is not rebuilt
    if done is None:
        # The slide is on view at once, before its overview (seconds for a slide without a pyramid) and while
        # its tiles are scored; the tissue outline and the heat map follow.
        slide_viewer("slide-viewer", sid, size, slide.mpp)
        try:
            ov = overview(slide, target, stride, params, min_tissue)
        except SlideError as exc:
            head.error(f"{shown_md}: {md(exc.reason, 600)}", icon=":material/texture:")
            st.stop()
        if (stored := case_open.stored_result(path, ov, pred.sha256)) is not None:
            slide_files.remember(key, stored)  # a case from the Cases page: its tiles as the batch run scored them
            st.rerun()
        with head:
            describe(ov)
        with top:
            bar = st.progress(0.0, text=f"Scoring {ov.grid.n:,} tissue tiles of {shown_md}…")
        done = score_slide(slide, lambda t, a: state.predict(pred, t, tta=a), target, stride=stride, tta=tta,
                           params=params, min_tissue=min_tissue, ov=ov, resume=slide_files.progress_for(key, ov.grid.n),
                           second_look=level.second_look if level else 0,
                           look=lambda t: state.predict(pred, t, look=True),
                           progress=lambda d, n: bar.progress(d / n, text=f"Scoring {shown_md}: {d:,}/{n:,} tiles"))
        slide_files.remember(key, done)
        st.rerun()

    ov = done.overview
    with head:
        describe(ov)
    frame, s = done.frame, done.summary
    thr = s["threshold"]
    # With the card's slide-level answer, red flags are its few tiles; tiles called tumour at the tile
    # threshold, or uncertain, stay listed in orange.
    gate = s.get("quality") or {}
    ans = answer(frame, level, gate.get("warning")) if level else None
    if ans is not None:
        done.frame["flagged"] = ans.flagged  # the downloads then call tumour the tiles flagged here (tiles_csv)
    red = ans.flagged if ans else (frame.decision == "tumour").to_numpy()
    frame = frame.assign(flag=red)
    above = s.get("tiles_above_threshold", s.get("tiles_flagged", 0))  # summaries written before the key existed
    flagged = frame[frame.flag | (frame.decision == "tumour") | frame.needs_review]
    with top:
        if gate.get("warning"):
            st.warning(f"**{gate['warning']}**", icon=":material/report:")
        if ans is not None and ans.decision is not None:
            words = "metastasis suspected" if ans.decision == POSITIVE else "no metastasis found"
            (st.warning if ans.decision == POSITIVE else st.success)(
                f"Slide answer: **{words}** · slide score {ans.slide_score:.3f} (operating point "
                f"{level.threshold:.3f}) · {ans.tiles_flagged} tile{'s' * (ans.tiles_flagged != 1)} flagged",
                icon=":material/biotech:")
            worth = operating_point_caption(pred.card)
            if worth:
                st.caption(worth)
            larger = size_caption(pred.card, ans.tiles_assessed, ans.size_shift)
            if larger:
                st.caption(larger)
        elif ans is not None:
            why = ("the slide is unlike the slides the model learned from (above), so the model neither calls it "
                   "nor flags its tiles" if gate.get("warning") else ans.withheld)
            st.info(f"No slide answer: {why}.", icon=":material/block:")
        if (case_id := case_open.opened(path)) is not None:
            st.page_link("views/cases.py", label="Back to this case in the worklist",
                         icon=":material/assignment_turned_in:")
            with st.expander(f"Sign out this case ({store.case_status(case_id)})"):
                signout.signout_form(case_id, shown, "slide-case")
            st.button("Next case to sign out", key="slide-next-case", icon=":material/skip_next:",
                      on_click=signout.open_next_case, args=(case_id,),
                      help="Opens the next case down the worklist that is not signed out yet (deferred ones "
                           "included), from the top again after the last.")
            if said := st.session_state.pop(case_open.OPEN_SAID, None):
                (st.error if said[1] else st.info)(md(said[0], 600), icon=":material/info:")
        m = st.columns(6)
        m[0].metric("Tiles scored", f"{s['tiles_scored']:,}")
        if ans is not None:
            size_words = (f" (the case slides' {level.tile_flag_p:.3f}, raised for this slide's size)"
                          if ans.flag_p > level.tile_flag_p else "")
            m[1].metric("Flagged", f"{ans.tiles_flagged:,}", help=f"Slide-level flags: P ≥ {ans.flag_p:.4g}{size_words}, "
                        f"and the top tile of a slide called positive. {above:,} tiles reach the tile "
                        f"threshold ({thr:.3f}); they are listed too, in orange.")
        else:
            m[1].metric(f"Flagged (P ≥ {thr:.3f})", f"{above:,}")
        m[2].metric("Worth a look", f"{len(flagged) - int(flagged.flag.sum()):,}",
                    help=f"Not flagged, but at or above the tile threshold ({thr:.3f}) or uncertain: orange in the "
                         f"viewer and the list. {s['tiles_needs_review']:,} of the slide's tiles need review (P near "
                         "the threshold, or their 8 views disagree).")
        m[3].metric("Not assessed", f"{gate.get('not_assessed', 0):,}",
                    help="Tiles the quality gate kept from the model: " + (", ".join(
                        f"{n} {QUALITY_WORDS.get(r, r)}" for r, n in gate.get("reasons", {}).items()) or "none"))
        m[4].metric("Highest P(tumour)", f"{s['max_p']:.3f}" if s["max_p"] is not None else "—")
        m[5].metric("Tiles per second", f"{s['timings']['tiles_per_s'] or 0:,.0f}",
                    help="Tiles read and scored per second on this slide (the tissue mask not counted).")
        order = st.radio("Tiles to look at, in order of", ["probability", "uncertainty"], horizontal=True,
                         key="slide-sort", help="Uncertainty: the spread of the 8 views with TTA, else closeness to "
                                                "the threshold. The viewer's n / p and the list below follow it.")
    if order == "probability":
        flagged = flagged.sort_values(["flag", "p"], ascending=False, kind="stable")
    else:
        flagged = flagged.assign(u=flagged.spread - (flagged.p - thr).abs()).sort_values("u", ascending=False)
    boxed = [int(i) for i in flagged.index[:slide_layers.MAX_BOXES]]
    place = {i: k for k, i in enumerate(boxed)}
    if (box := case_open.tile_request(path)) is not None:  # a queued tile, opened from the Review queue
        hit = slide_layers.tile_at(frame, box[0] + box[2] / 2, box[1] + box[3] / 2)
        if hit is not None:
            st.session_state[TILE_OPEN] = (key, hit, "viewer")
    opened = st.session_state.get(TILE_OPEN)
    opened_i = opened[1] if opened and opened[0] == key else None
    heat_name, tissue_name = view_layers(sid, key, ov, frame)
    view = slide_viewer("slide-viewer", sid, size, slide.mpp, heat=heat_name, tissue=tissue_name,
                        boxes=slide_layers.boxes(flagged, flagged.flag.to_numpy()), selected=place.get(opened_i, -1))
    if view.clicked:
        hit = slide_layers.tile_at(frame, view.clicked["x"], view.clicked["y"])
        if hit is None:
            st.toast("No tissue tile was scored where you clicked.")
        elif hit != opened_i:
            st.session_state[TILE_OPEN] = (key, hit, "viewer")
            st.rerun()
    if view.step and 0 <= int(view.step["index"]) < len(boxed) and boxed[int(view.step["index"])] != opened_i:
        st.session_state[TILE_OPEN] = (key, boxed[int(view.step["index"])], "viewer")
        st.rerun()
    st.caption("Scroll to zoom, drag to pan, click a tile to open it below; n / p (with the viewer focused) or "
               "Next / Previous centre the next or previous tile to look at. Red: flagged, orange: worth a look (at "
               "the tile threshold, or uncertain).")

    # the opened tile shows where the reader opened it: below the viewer, or below the list
    opened_from = opened[2] if opened and opened[0] == key and len(opened) > 2 else "viewer"
    if opened_from == "viewer":
        show_opened(frame, opened_i)

    out = slide_files.files(key, done, shown)
    d = st.columns(3)
    d[0].download_button("GeoJSON for QuPath", out["geojson"], f"{shown}.geojson", "application/geo+json",
                         key="slide-dl-geojson", on_click="ignore")
    d[1].download_button("Tiles CSV", out["csv"], f"{shown}.tiles.csv", "text/csv", key="slide-dl-csv",
                         on_click="ignore")
    d[2].download_button("Heat map PNG", out["heatmap"], f"{shown}.heatmap.png", "image/png", key="slide-dl-png",
                         on_click="ignore")

    st.subheader("Tiles to look at")
    queueing.slide_button(slide, name, frame, pred, target, thr)
    if flagged.empty:
        st.info("No tile flagged or worth a look on this slide.", icon=":material/check_circle:")
    else:
        gallery = flagged.head(st.session_state.setdefault(SHOWN, {}).get(key, GALLERY))
        st.caption(slide_layers.to_look_at_words(len(flagged), int(flagged.flag.sum()), len(gallery)))
        cols = st.columns(6)
        for k, (i, row) in enumerate(gallery.iterrows()):
            tile = slide.read_scaled(int(row.x), int(row.y), int(row.width), int(row.height), target, (TILE, TILE))
            col = cols[k % 6]
            col.image(tile, caption=f"x={row.x} y={row.y} · P={row.p:.3f}{' · flagged' * bool(row.flag)}", width=96)
            if col.button("Open", key=f"slide-open-{i}", type="primary" if i == opened_i else "secondary"):
                st.session_state[TILE_OPEN] = (key, int(i), "list")
                st.rerun()
        if len(gallery) < len(flagged):
            more = min(GALLERY, len(flagged) - len(gallery))
            if st.button(f"Show {more} more", key="slide-gallery-more", icon=":material/expand_more:"):
                st.session_state[SHOWN][key] = len(gallery) + more
                st.rerun()
    if opened_from == "list":
        show_opened(frame, opened_i)
