"""Page 4: ROC with the operating point, a live threshold, confusion matrix, calibration, training curves."""
import math

import numpy as np
import pandas as pd
import streamlit as st

from app.display import site_calibration
from app.inputs import datasets, example_tiles
from app.runtime import state
from model_training.bundle.files import HISTORY_FILE, VAL_PRED_FILE
from model_training.evaluation.figures import confusion_figure, history_figure, reliability_figure, roc_figure
from model_training.evaluation.metrics import at_threshold

KEY = "perf-thr"

st.title("Performance")
site_calibration.link()
card, card_error = state.card_or_none()
if card is None:
    st.error(f"No model card to evaluate: {card_error}", icon=":material/error:")
    st.stop()
bundle = state.bundle_path()
tta_thr = float(card.get("calibration", {}).get("tta", {}).get("threshold", card.get("threshold", 0.5)))

sources = {}
val_file = bundle / VAL_PRED_FILE
if val_file.exists():
    try:
        # float32, as the model wrote them: the threshold is one of these values, and re-reading them as
        # float64 would move the tile sitting exactly on it to the other side
        vp = pd.read_csv(val_file, dtype={"p": np.float32})
        sources[f"Bundle validation predictions ({len(vp)} tiles, 8-view TTA)"] = (
            vp["label"].to_numpy(int), vp["p"].to_numpy(float), tta_thr)
    except (ValueError, KeyError, OSError) as exc:
        st.warning(f"{VAL_PRED_FILE} in the bundle cannot be read ({exc}).")
browser = st.session_state.get(datasets.SCORED)
if browser:
    sources[f"Validation browser: {browser['name']}"] = (browser["y"], browser["p"], browser["threshold"])
EXAMPLES = f"The {len(example_tiles.labels())} {example_tiles.NAME} shipped with PathReview (8-view TTA)" \
    if example_tiles.available() else None
if not sources and EXAMPLES is None:
    st.warning(f"No validation predictions: the bundle has no {VAL_PRED_FILE} and no dataset was scored in "
               "the Validation browser.", icon=":material/warning:")
    st.stop()

# The examples come last, the default only when nothing else is there: their errors were picked on purpose.
name = st.radio("Evaluate on", list(sources) + ([EXAMPLES] if EXAMPLES else []), key="perf-source")
if name == EXAMPLES:
    st.info(example_tiles.NOTE + " Use them to see how the page works, not to judge the model.",
            icon=":material/science:")
    pred = state.predictor()
    ex = datasets.scored(str(example_tiles.folder()), datasets.MAX_TILES, True, pred.sha256, pred)
    sources[name] = (ex["label"].to_numpy(int), ex["p"].to_numpy(float), pred.threshold(True))
y, p, model_thr = sources[name]
if len(set(y.tolist())) < 2:
    st.warning("These predictions contain a single class: ROC and calibration need both.")
    st.stop()


def reset() -> None:
    st.session_state[KEY] = model_thr
    state.set_threshold(model_thr, model_thr)


state.threshold_slider_follows(KEY, model_thr)
c = st.columns([4, 1])
thr = c[0].slider("Threshold", 0.0, 1.0, step=0.001, format="%.3f", key=KEY,
                  on_change=lambda: state.set_threshold(st.session_state[KEY], model_thr),
                  help="Tiles with P(tumour) at or above the threshold are called tumour.")
c[1].button(f"Model threshold ({model_thr:.3f})", on_click=reset, key="perf-reset")

m, ref = at_threshold(y, p, thr), at_threshold(y, p, model_thr)


def fmt(v: float) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.3f}"


def delta(k: str) -> str | None:
    d = m[k] - ref[k]
    return None if math.isnan(d) or abs(d) < 5e-4 else f"{d:+.3f}"


cols = st.columns(6)
for col, (key, label) in zip(cols, [("sensitivity", "Sensitivity"), ("specificity", "Specificity"),
                                    ("precision", "PPV (precision)"), ("npv", "NPV"), ("accuracy", "Accuracy"),
                                    ("f1", "F1")]):
    col.metric(label, fmt(m[key]), delta(key), help="Arrow: change from the model's own threshold.")
st.caption(f"At threshold {thr:.3f}: TP {m['tp']} · FP {m['fp']} · FN {m['fn']} · TN {m['tn']} "
           f"(n = {len(y)}, {int(y.sum())} tumour). The model's own threshold is {model_thr:.3f}.")

c = st.columns(2)
c[0].plotly_chart(roc_figure(y, p, thr), key="perf-roc")
c[1].plotly_chart(confusion_figure(m), key="perf-confusion")
c = st.columns(2)
c[0].plotly_chart(reliability_figure(y, p), key="perf-reliability")
with c[1]:
    st.markdown("**Calibration**")
    cal = card.get("calibration", {})
    st.dataframe(pd.DataFrame([{"mode": k, "temperature": v.get("temperature"),
                                "bias": v.get("bias", 0.0), "threshold": v.get("threshold")}
                               for k, v in cal.items()]), hide_index=True)
    rules = {v.get("threshold_rule", "") for v in cal.values()} - {""}
    for rule in sorted(rules):  # the rule in full: a table column would cut it
        st.markdown(f"**How the threshold was chosen:** {rule}.")
    st.caption("Probabilities are calibrated on the validation set (temperature and bias); the reliability "
               "diagram plots observed tumour fraction against predicted P(tumour) (diagonal = perfect "
               "calibration).")

history = bundle / HISTORY_FILE
if history.exists():
    try:
        st.plotly_chart(history_figure(pd.read_csv(history)), key="perf-history")
    except (ValueError, KeyError, OSError) as exc:
        st.warning(f"{HISTORY_FILE} cannot be plotted ({exc}).")
else:
    st.info(f"The bundle has no {HISTORY_FILE}: no training curves to show.")
