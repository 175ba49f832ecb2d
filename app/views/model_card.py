"""Page 5: the model card — data, splits, metrics with CIs, threshold and calibration, use, versions, hashes."""
import json
import platform
from importlib import metadata

import pandas as pd
import streamlit as st

from app.display import gate_card, site_calibration
from app.runtime import state
from model_training.bundle.files import CARD_FILE
from model_training.inference.gate import SLIDE_OOD_SHARE
from model_training.slides.answer import UNSEEN_MAX

st.title("Model card")
pred, load_error = state.load_predictor()
card = pred.card if pred is not None else state.card_or_none()[0]
if load_error:
    st.error(load_error, icon=":material/gpp_bad:")
if card is None:
    st.stop()


def num(v, digits: int = 3) -> str:
    if isinstance(v, (int, float)) and v == v:
        return f"{v:.{digits}f}" if isinstance(v, float) else f"{v:,}"
    return "—" if v is None or v != v else str(v)


def kv(d: dict) -> pd.DataFrame:
    return pd.DataFrame({"field": list(d), "value": [num(v) if not isinstance(v, (dict, list)) else
                                                     json.dumps(v) for v in d.values()]})


st.header(card.get("name", "unnamed model"))
st.markdown(f"**Intended use.** {card.get('intended_use', '—')}")
site_calibration.show(state.bundle_path(), card)
st.markdown("**Limitations**\n" + "\n".join(f"- {x}" for x in card.get("limitations", [])))

st.subheader("Identity and hashes")
verified = "verified when loaded" if pred is not None else "NOT verified (the model did not load)"
st.markdown(f"Model file sha256 ({verified}):")
st.code(card.get("sha256", "—"), language=None)
st.dataframe(kv({"bundle": str(state.bundle_path()), "created": card.get("created"),
                 "architecture": card.get("architecture"), "parameters": card.get("params"),
                 "FLOPs per image": card.get("flops_per_image"), "TTA views": card.get("tta_views"),
                 "output": card.get("output"),
                 "tile scale": f"{card['tile_px']} px at {card['mpp']} µm/px" if "mpp" in card else None,
                 "scale source": card.get("mpp_source")}), hide_index=True)
gate_card.show(card)
onnx, int8 = card.get("onnx"), card.get("onnx_int8")
engine = pred.engine.name if pred is not None else None
RUNTIMES = {"onnx": "ONNX Runtime", "onnx-int8": "ONNX Runtime, int8 copy", "keras": "Keras"}
if onnx:
    st.markdown(f"Scored by **{RUNTIMES.get(engine, 'Keras')}**. `{onnx['file']}` is exported "
                f"from this model.keras (largest logit difference {onnx['max_abs_logit_diff']:.1g} on "
                f"{onnx['check_tiles']} check tiles); its sha256:")
    st.code(onnx["sha256"], language=None)
if onnx and int8:
    c = int8["check"]
    auc = (f"AUC {num(c['int8']['auc'], 4)} against {num(c['float']['auc'], 4)}, "
           if c["int8"].get("auc") is not None else "")
    st.markdown(f"`{int8['file']}` is an int8 copy of `{onnx['file']}` for fast scoring on CPUs "
                f"({int8['method']}; ranges from {int8['calibration_source']}). On {c['tiles']:,} validation "
                f"tiles scored with TTA it gives the same decision for **{c['same_decision']:.2%}** "
                f"({c['decisions_changed']} changed), {auc}sensitivity {num(c['int8']['sensitivity'])} against "
                f"{num(c['float']['sensitivity'])}, and probabilities within {c['max_abs_p_diff']:.3f}. "
                f"The metrics below are the model of record's; `PATHREVIEW_ENGINE=onnx` scores with it exactly. "
                f"Its sha256:")
    st.code(int8["sha256"], language=None)
    if engine == "onnx":
        st.caption("This server scores with `model.onnx` instead: `PATHREVIEW_ENGINE` says so, or the int8 copy "
                   "scored its probe tiles differently on this CPU (the server log says which).")

st.subheader("Validation metrics")
rows = []
for mode, v in card.get("validation", {}).items():
    if not isinstance(v, dict) or "auc" not in v:
        continue
    ci = v.get("auc_ci95") or [None, None]
    at = v.get("at_threshold", {})
    rows.append({"scoring": mode, "n": v.get("n"), "tumour": v.get("positives"), "AUC": num(v.get("auc")),
                 "AUC 95% CI": f"{num(ci[0])} – {num(ci[1])}", "NLL": num(v.get("nll")),
                 "ECE": num(v.get("ece")), "Brier": num(v.get("brier")), "threshold": num(at.get("threshold")),
                 "sensitivity": num(at.get("sensitivity")),
                 "sensitivity 95% CI": " – ".join(num(x) for x in v.get("sensitivity_ci95", [None, None])),
                 "specificity": num(at.get("specificity")),
                 "specificity 95% CI": " – ".join(num(x) for x in v.get("specificity_ci95", [None, None])),
                 "PPV": num(at.get("precision")), "NPV": num(at.get("npv"))})
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("Confidence intervals: percentile bootstrap. Rates are at the operating threshold below. "
               "colour_shifted_tta: validation tiles recoloured beyond the training stain augmentation.")

st.subheader("Threshold and calibration")
cal = card.get("calibration", {})
st.dataframe(pd.DataFrame([{"scoring": k, "temperature": num(v.get("temperature")), "bias": num(v.get("bias", 0.0)),
                            "threshold": num(v.get("threshold"), 4), "rule": v.get("threshold_rule", "")}
                           for k, v in cal.items()]), hide_index=True)
st.caption("P(tumour) = sigmoid(logit / temperature + bias), both fitted on validation. Decisions use the "
           "TTA row: tumour when the calibrated P(tumour) ≥ threshold.")
nll_check = card.get("validation", {}).get("calibration_nll", {})
if nll_check:
    st.dataframe(pd.DataFrame([{"scoring": k, **{name.removeprefix("nll_"): num(x, 4) for name, x in v.items()}}
                               for k, v in nll_check.items()]), hide_index=True)
    st.caption("Validation NLL without calibration, with temperature only and with temperature + bias; the "
               "5-fold columns are fitted on four fifths and scored on the held-out fifth.")

slide_level = card.get("slide_level")
if slide_level:
    st.subheader("Slide-level operating point")
    st.markdown(f"{slide_level['method']}. Threshold **{num(slide_level['threshold'], 4)}** on `slide_score` "
                f"({slide_level['threshold_rule']}); tiles flagged at P ≥ {num(slide_level['tile_flag_p'], 3)}.")
    figures = ("auc", "auc_ci95", "sensitivity", "sensitivity_ci95", "specificity", "specificity_ci95",
               "flagged_on_negatives_median", "flagged_metastases_kept")
    parts = {"fit_set": slide_level["fit_set"], "test_set": slide_level["test_set"],
             **slide_level.get("test_set_by_fold", {})}
    st.dataframe(pd.DataFrame([{"case set": name, **{f: str(part.get(f)) for f in figures}}
                               for name, part in parts.items()]), hide_index=True)
    how = slide_level["cases"].get("validation")
    st.caption(f"Labelled case slides built from the validation split: {slide_level['cases'].get('source', '')}"
               f"{f'; {how}' if how else ''}.")
    look = card.get("look_head")
    if look:
        v = look.get("validation", {})
        st.markdown(f"**Second look.** A slide's highest tiles are scored again, 8 views each, by the look head: "
                    f"{look['method']}; C = {look['settings']['c']:g}, fitted on {look['fitted_on']}. Validation "
                    f"AUC {num(v.get('auc'), 4)} (the tile head: {num(v.get('tile_head_auc_tta'), 4)}), a lighter "
                    "penalty than the tile head's that its int8 copy could not carry."
                    + (f" On the int8 copy's features it makes the same call on {check['same_decision']:.2%} of the "
                       f"validation tiles (P differs by {check['mean_abs_dp']:.4f} on average)."
                       if (check := look.get("int8_check")) and "same_decision" in check else ""))
        st.code(look.get("command") or "python -m model_training.cli.fit_look_head BUNDLE --data PCAM_ROOT",
                language="bash")
    params = slide_level.get("parameters", {})
    if params.get("reference_tiles"):
        st.markdown(f"**Size rule.** On a slide of N assessed tiles above {params['reference_tiles']} (the case "
                    f"slides' median), tiles are read {num(params['tail_scale'], 3)} × ln(N / "
                    f"{params['reference_tiles']}) logits lower, for the score and the flags alike "
                    f"({slide_level.get('size_rule', '')}).")
    st.markdown(f"**No answer.** A slide gets no decision when the quality gate calls it unlike the training "
                f"slides (at least {SLIDE_OOD_SHARE:.0%} of its tiles out of distribution, or its typical stain "
                f"beyond the gate's limit), and is not called negative when more than {UNSEEN_MAX:.0%} of its "
                "tissue tiles were kept from the model; a positive call stands.")
    if slide_level.get("size_check"):
        st.dataframe(pd.DataFrame([{"slides laid side by side": r["factor"], "tiles (median)": r["assessed_tiles_median"],
                                    **{f"{what} ({rule})": r[key][field]
                                       for key, rule in (("with_size_rule", "size rule"), ("without", "without"))
                                       for what, field in (("normal called suspicious", "normal_called_positive"),
                                                           ("normal flags, median", "normal_flags_median"),
                                                           ("metastases called", "metastases_called"))}}
                                   for r in slide_level["size_check"]]), hide_index=True)
        st.caption("Larger slides made of the held-out case slides: normal slides side by side, and each slide "
                   "with a metastasis beside normal ones. Their patches repeat, so this speaks for a few hundred "
                   "tiles, not for a whole lymph node.")

members = card.get("members", [])
if members:
    st.subheader("Ensemble members")
    st.caption(f"P(tumour) comes from the mean of {len(members)} models' logits, one network in one file.")
    st.dataframe(pd.DataFrame([{"member": m.get("name"), "AUC (TTA)": num(m.get("auc_tta"), 4),
                                "AUC (single)": num(m.get("auc_single"), 4), "parameters": num(m.get("params")),
                                "command": (m.get("training") or {}).get("command", "—")} for m in members]),
                 hide_index=True)

st.subheader("Data and splits")
st.dataframe(kv(card.get("data", {})), hide_index=True)

st.subheader("Training")
training = dict(card.get("training", {}))
if "command" in training:
    st.code(training.pop("command"), language="bash")
st.dataframe(kv(training), hide_index=True)
refit = dict(card.get("head_refit", {}))
if refit:
    st.markdown("**Last layer refitted after training** (same backbone; training negatives the model called "
                "tumour weighted up):")
    st.code(refit.pop("command", "—"), language="bash")
    st.dataframe(kv(refit), hide_index=True)
recal = dict(card.get("recalibration", {}))
if recal:
    st.markdown("**Calibration re-fitted after training** (same weights):")
    st.code(recal.pop("command", "—"), language="bash")
    st.dataframe(kv(recal), hide_index=True)

st.subheader("Library versions")
running = {"python": platform.python_version()}
for dist in ("keras", "numpy", "scikit-learn", "tensorflow", "onnxruntime"):
    try:  # the installed versions, without importing TensorFlow into a process that scores with ONNX
        running[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
trained = card.get("library_versions", {})
st.dataframe(pd.DataFrame([{"library": k, "trained with": trained.get(k, "—"), "running": running.get(k, "—")}
                           for k in dict.fromkeys([*trained, *running])]), hide_index=True)

st.download_button(f"Download {CARD_FILE}", json.dumps(card, indent=2, default=str),
                   file_name=CARD_FILE, mime="application/json", on_click="ignore", key="card-download")
