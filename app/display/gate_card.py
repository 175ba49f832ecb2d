"""The Model card page's account of the quality gate: what it checks, its limits, and what it measured."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.display.quality import QUALITY_WORDS

SETS = {"held_out": "held-out validation tiles (lymph node)", "blur_2.5px": "the same tiles out of focus (blur 2.5 px)",
        "pen": "the same tiles with marker-pen strokes", "other_organ": "tissue of another organ"}


def figures_table(figures: dict) -> pd.DataFrame:
    """One row per test set: tiles, the share let through (ok) or stopped, and why."""
    rows = []
    for key, label in SETS.items():
        f = figures.get(key)
        if not f:
            continue
        ok = f.get("ok", 1.0 - f.get("flagged", 0.0))
        reasons = ", ".join(f"{r} {n}" for r, n in f.get("reasons", {}).items() if r != "ok")
        rows.append({"set": label, "tiles": f["tiles"], "assessed (ok)": f"{ok:.1%}",
                     "not assessed": f"{1 - ok:.1%}", "why": reasons or "—"})
    return pd.DataFrame(rows)


def show(card: dict) -> None:
    """The gate's section, or a note that this bundle has none."""
    st.subheader("Quality gate: when the model does not answer")
    gate = card.get("quality_gate")
    if not gate:
        st.info("This bundle has no quality gate: every tile gets a tumour or normal call, whatever it shows. Fit "
                "one with `python -m model_training.cli.fit_gate BUNDLE --data PCAM_ROOT`.", icon=":material/info:")
        return
    st.markdown("Before the model's call is shown, every tile is checked. A tile that fails a check is **not "
                "assessed**: it gets no tumour or normal call and is not counted as flagged. The checks, in order: "
                + "; ".join(f"**{r}** ({w})" for r, w in QUALITY_WORDS.items()) + ".")
    figures = gate.get("figures", {})
    held = figures.get("held_out", {})
    if held.get("auc_ok") is not None:
        st.markdown(f"On held-out validation tiles, AUC is {held['auc_all']:.4f} on every tile and "
                    f"{held['auc_ok']:.4f} on the tiles the gate lets through.")
    st.dataframe(figures_table(figures), hide_index=True)
    if gate.get("other_organ_source"):
        st.caption(f"Other organ: tissue tiles of {gate['other_organ_source']}.")
    st.caption(f"Fitted on {gate.get('fitted_on', '—')} ({gate.get('engine', '?')} features). "
               f"{gate.get('method', '')}")
    st.markdown(f"`{gate['file']}` sha256 (checked when the model loads):")
    st.code(gate["sha256"], language=None)
    st.dataframe(pd.DataFrame({"limit": list(gate["limits"]), "value": [f"{v:.4g}" for v in gate["limits"].values()]}),
                 hide_index=True)
