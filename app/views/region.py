"""Page 2: tile a larger H&E image at a stride, score every tile (single view), map P(tumour) over it."""
import streamlit as st

from app.display.text import md
from app.display.widget_keys import keyed_to
from app.inputs.regions import MAX_SIDE, STRIDES, RegionError, check_region, clicked_tile, heatmap_figure, score_region
from app.inputs.uploads import UPLOAD_TYPES
from app.review import detail
from app.runtime import scoring, state
from model_training.data.decode import TileError, read_image

IMAGE = "region_image"
SCORES = "region_scores"
MAX_REGION_MB = 50

st.title("Region view")
st.markdown(f"Upload a larger H&E image (at most {MAX_SIDE}×{MAX_SIDE} pixels, same magnification as PCam "
            "tiles). It is cut into 96×96 tiles at the chosen stride and every tile is scored (single view, "
            "no TTA); each heat-map cell sits on its tile's centre, the region the label refers to.")
pred = state.predictor()

upload = st.file_uploader("H&E image", type=UPLOAD_TYPES, key="region-upload", max_upload_size=MAX_REGION_MB)
stride = st.radio("Stride", STRIDES, horizontal=True, key="region-stride", format_func=lambda s: f"{s} px",
                  help="Smaller strides overlap the tiles: a finer map, more tiles to score.")
if upload is None:
    st.info("Drop an image above. It stays in this browser session only.", icon=":material/upload_file:")
    st.stop()

if upload.size > MAX_REGION_MB * 2**20:  # the browser enforces the limit too, but a client need not be a browser
    st.error(f"{md(upload.name)}: is {upload.size / 2**20:.0f} MB; the limit for a region is {MAX_REGION_MB} MB",
             icon=":material/block:")
    st.stop()
file_sig = (upload.file_id, upload.name, upload.size)
held = st.session_state.get(IMAGE)
if held is None or held["signature"] != file_sig:
    try:
        img = read_image(upload.getvalue(), upload.name)
        check_region(img, upload.name)
    except (TileError, RegionError) as exc:
        st.session_state.pop(IMAGE, None)
        st.error(md(exc, 600), icon=":material/broken_image:")
        st.stop()
    held = {"signature": file_sig, "image": img, "name": upload.name}
    st.session_state[IMAGE] = held
img, name = held["image"], held["name"]

score_sig = (file_sig, stride, pred.sha256)
cached = st.session_state.get(SCORES)
scores = cached["scores"] if cached and cached["signature"] == score_sig else None
if scores is None:
    h, w = img.shape[:2]
    bar = st.progress(0.0, text=f"Scoring {md(name)} ({w}×{h}) at stride {stride}…")
    scores = score_region(img, stride, lambda t: state.predict(pred, t, tta=False), pred.threshold(False),
                          progress=scoring.throttled(bar.progress))
    bar.empty()
    st.session_state[SCORES] = {"signature": score_sig, "scores": scores}

flat = scores.p.reshape(-1)
ok = scores.ok.reshape(-1)
m = st.columns(5)
m[0].metric("Tiles scored", f"{scores.n}")
m[1].metric("Highest P(tumour)", f"{flat[ok].max():.3f}" if ok.any() else "—")
m[2].metric(f"Tiles ≥ threshold {scores.threshold:.3f}", f"{int((flat[ok] >= scores.threshold).sum())}")
m[3].metric("Not assessed", f"{int((~ok).sum())}", help="Tiles the quality gate kept from the model (glass, folds, "
            "pen, out of focus, unlike lymph node): left blank on the map.")
m[4].metric("Image", f"{img.shape[1]}×{img.shape[0]}")

c = st.columns([1, 1])
opacity = c[0].slider("Heat-map opacity", 0.0, 1.0, 0.45, 0.05, key="region-opacity")
k = c[1].slider("Top-k tiles", 1, min(24, scores.n), min(8, scores.n), key="region-k")
top = scores.top_k(k)
if len(top) == 0:
    st.plotly_chart(heatmap_figure(img, scores, opacity), key="region-heatmap")
    st.warning("The quality gate let the model assess no tile of this image (glass, folds, pen, out of focus or "
               "tissue unlike lymph node): nothing to rank.", icon=":material/block:")
    st.stop()


def tile_label(r: int) -> str:
    _, ty, tx = scores.tile_at(img, top[r])
    return f"#{r + 1} · x={tx} y={ty} · P={flat[top[r]]:.3f}"


CLICKED = "region_clicked"


def forget_click() -> None:
    st.session_state.pop(CLICKED, None)


def remember_click() -> None:
    idx = clicked_tile(st.session_state.get("region-heatmap"))
    if idx is not None:
        st.session_state[CLICKED] = (score_sig, idx)


rank = st.selectbox("Open one of the top tiles", list(range(len(top))), key=keyed_to("region-pick", score_sig),
                    format_func=tile_label,
                    on_change=forget_click)
clicked = st.session_state.get(CLICKED)
chosen = clicked[1] if clicked and clicked[0] == score_sig and clicked[1] < scores.n else int(top[rank])
tile, y, x = scores.tile_at(img, chosen)
st.plotly_chart(heatmap_figure(img, scores, opacity, highlight=(y, x)), key="region-heatmap",
                on_select=remember_click, selection_mode="points")
st.caption("Click a cell of the map, or pick from the top tiles, to open that tile below.")

st.markdown(f"**Top {k} tiles** (single-view P(tumour); the white box on the map is the opened tile)")
cols = st.columns(min(k, 8))
for r, idx in enumerate(top):
    t, ty, tx = scores.tile_at(img, idx)
    cols[r % len(cols)].image(t, caption=f"#{r + 1} x={tx} y={ty} · {flat[idx]:.3f}", width=96)

st.divider()
detail.render(pred, tile, f"{name} @ x={x}, y={y}", key="region",
              source={"source": "upload", "upload_name": name, "x": int(x), "y": int(y), "width": 96, "height": 96},
              context="The detail view scores the tile on its eight dihedral views (TTA), so its P(tumour) "
                      "may differ slightly from the single-view heat map.")
