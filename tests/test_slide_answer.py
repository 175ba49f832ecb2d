"""The slide-level answer: the score from the top tiles, flags that agree with the decision, tiles that are not
assessed left out, the card's operating point, and fitting it on case slides built from real validation
patches and scored with the shipped bundle's int8 copy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_training.slides.answer import NEGATIVE, POSITIVE, SlideLevel, answer, slide_score
from model_training.slides.answer_fit import SENSITIVITY_TARGET, fit_and_measure
from model_training.slides.batch import BatchJob

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "assets" / "pathcnn-v4"
CARD = json.loads((BUNDLE / "model_card.json").read_text())


def frame(p, quality=None) -> pd.DataFrame:
    f = pd.DataFrame({"x": np.arange(len(p)) * 96, "y": 0, "p": p})
    return f if quality is None else f.assign(quality=quality)


def test_the_shipped_card_records_a_sensitivity_first_operating_point():
    level = SlideLevel.from_card(CARD)
    block = CARD["slide_level"]
    assert level is not None and level.k == block["parameters"]["k"] and 0 < level.threshold < 1
    assert block["fit_set"]["sensitivity"] >= SENSITIVITY_TARGET
    for part in ("fit_set", "test_set"):
        lo, hi = block[part]["auc_ci95"]
        assert lo <= block[part]["auc"] <= hi
        assert len(block[part]["sensitivity_ci95"]) == 2 and len(block[part]["specificity_ci95"]) == 2
    assert SlideLevel.from_card({"name": "old"}) is None


@pytest.mark.parametrize("k", [1, 3])
def test_flags_agree_with_the_decision(k):
    level = SlideLevel(k=k, temperature=1.0, bias=-2.0, threshold=0.5)
    normal = answer(frame([0.1, 0.2, 0.05, 0.6]), level)
    assert normal.decision == NEGATIVE
    if k == 1:
        assert normal.tiles_flagged == 0  # a slide called negative shows no flag
    tumour = answer(frame([0.1, 0.999, 0.998, 0.997]), level)
    assert tumour.decision == POSITIVE and tumour.tiles_flagged >= 1 and tumour.flagged[1]
    assert tumour.slide_score == pytest.approx(slide_score(np.array([0.1, 0.999, 0.998, 0.997]), level))


def test_tiles_not_assessed_count_neither_toward_the_score_nor_as_flags():
    level = SlideLevel(k=1, temperature=1.0, bias=-2.0, threshold=0.5)
    p = [0.1, 0.9999, 0.2]
    everything = answer(frame(p), level)
    gated = answer(frame(p, ["ok", "blurred", "ok"]), level)
    assert everything.decision == POSITIVE and everything.tiles_flagged == 1
    assert gated.decision == NEGATIVE and gated.tiles_flagged == 0 and gated.tiles_assessed == 2
    assert gated.slide_score == pytest.approx(answer(frame([0.1, 0.2]), level).slide_score)
    none = answer(frame(p, ["dark", "blurred", "empty"]), level)
    assert none.slide_score is None and none.decision is None and none.tiles_flagged == 0


def test_fitting_on_a_fixed_case_set_reaches_the_sensitivity_target_and_is_repeatable(data_root, tmp_path):
    job = BatchJob(str(BUNDLE), "onnx-int8", str(tmp_path))
    first = fit_and_measure(job, CARD, data_root, tmp_path, n=8, k=3, seed=4)
    again = fit_and_measure(job, CARD, data_root, tmp_path, n=8, k=3, seed=4)  # the scored slides are reused
    assert first == again
    fitted, tested = first["fit_set"], first["test_set"]
    assert fitted["slides"] == tested["slides"] == 8 and fitted["positive_slides"] == 4
    assert fitted["sensitivity"] >= SENSITIVITY_TARGET
    # the slide-level flags are far fewer on normal slides than the tile decision's
    assert tested["flagged_on_negatives_median"] < tested["tile_decision_on_negatives_median"]
    cases = pd.read_csv(tmp_path / "scored-h1" / "cases.csv")
    assert list(cases.status) == ["scored"] * 8 or list(cases.status) == ["skipped"] * 8
