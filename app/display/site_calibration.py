"""The one message about new slides: validation figures are optimistic; recalibrate on a site's own tiles."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

OPTIMISTIC = ("Validation figures are optimistic for new slides: the validation tiles come from the same two "
              "centres as the training tiles, and other labs, stains and scanners move the scores. Before "
              "relying on the threshold, re-fit the calibration and threshold on your own labelled tiles.")


def recalibrate_command(bundle: Path) -> str:
    """The CLI line that re-fits a bundle's calibration and threshold on a site's labelled tiles."""
    return (f"python -m model_training.cli.recalibrate --bundle {bundle} \\\n"
            "    --data /path/to/your/labelled/tiles --split valid --out runs/site-calibrated\n"
            "# then serve it: PATHREVIEW_MODEL=runs/site-calibrated make run")


def show(bundle: Path, card: dict) -> None:
    """The warning and the recalibration recipe, as shown on the Model card page."""
    st.warning(OPTIMISTIC, icon=":material/warning:")
    shifted = card.get("validation", {}).get("colour_shifted_tta")
    if shifted:
        st.caption(f"On a colour-shifted copy of validation (stain shifts beyond the training augmentation) this "
                   f"model scores AUC {shifted['auc']:.3f} and sensitivity "
                   f"{shifted['at_threshold']['sensitivity']:.3f} at its threshold.")
    with st.expander("Recalibrate for your site", icon=":material/tune:"):
        st.markdown("Put a few hundred labelled tiles from your own slides (both classes, from slides the model "
                    "never saw) under one folder as `valid/` + `valid_labels.csv` (`id,label`), as class folders "
                    "`valid/0/` and `valid/1/`, or as PCam HDF5 files, then run:")
        st.code(recalibrate_command(bundle), language="bash")
        st.markdown("The weights stay as they are; the new bundle carries a calibration and threshold measured "
                    "on your tiles, and this page then shows your figures.")


def link() -> None:
    """A pointer to the recipe, for pages that show validation figures."""
    st.page_link("views/model_card.py", label="Validation figures are optimistic for new slides: recalibrate "
                 "for your site (Model card)", icon=":material/tune:")
