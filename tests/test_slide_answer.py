"""The slide-level answer: the score from the top tiles and their neighbours, flags that agree with the
decision, tiles that are not assessed left out, the size rule for slides larger than the case slides, the
card's operating point, and fitting it on case slides built
from real validation patches and scored with the shipped bundle's int8 copy (with a second look at each slide's
top tiles)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from model_training.bundle.files import DEFAULT_BUNDLE
from model_training.slides.answer import FEATURES, NEGATIVE, NO_TILES, POSITIVE, SlideLevel, answer, features
from model_training.slides.answer_fit import (SENSITIVITY_TARGET, SPECIFICITY_FLOOR, card_block, fit_and_measure,
                                              operating_point, threshold_rule)
from model_training.evaluation import derived
from model_training.inference.predictor import Predictor
from model_training.slides.batch import BatchJob
from model_training.slides.case_set import load_half
from model_training.slides.cases_csv import read_cases, row_from_summary, write_cases
from model_training.slides.labelled import build
from model_training.slides.run import run_slide
from model_training.slides.tiles_csv import read_tiles

BUNDLE = DEFAULT_BUNDLE
CARD = json.loads((BUNDLE / "model_card.json").read_text())


def frame(p, quality=None, xs=None) -> pd.DataFrame:
    f = pd.DataFrame({"x": np.arange(len(p)) * 96 if xs is None else xs, "y": 0, "p": p})
    return f if quality is None else f.assign(quality=quality)


def test_the_shipped_card_records_a_sensitivity_first_operating_point():
    level = SlideLevel.from_card(CARD)
    block = CARD["slide_level"]
    assert level is not None and len(level.weights) == len(FEATURES) and 0 < level.threshold < 1
    assert level.second_look == block["parameters"]["second_look"] > 0 and 0 < level.tile_flag_p < 1
    assert block["fit_set"]["sensitivity"] >= SENSITIVITY_TARGET and block["fit_set"]["specificity"] >= SPECIFICITY_FLOOR
    assert block["threshold_rule"] == threshold_rule(SENSITIVITY_TARGET, SPECIFICITY_FLOOR)
    for part in ("fit_set", "test_set"):
        lo, hi = block[part]["auc_ci95"]
        assert lo <= block[part]["auc"] <= hi
        assert len(block[part]["sensitivity_ci95"]) == 2 and len(block[part]["specificity_ci95"]) == 2
    assert SlideLevel.from_card({"name": "old"}) is None
    # a block of an earlier form (top-k Platt) is not read as this one: the answer is then left out, not wrong
    assert SlideLevel.from_card({"slide_level": {"parameters": {"k": 3}, "threshold": 0.2}}) is None


def test_the_operating_point_keeps_a_margin_on_both_targets():
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(250), np.zeros(250)]
    # well apart: the sensitivity margin places the threshold, and specificity is far above its floor
    apart = expit(np.r_[rng.normal(4, 1, 250), rng.normal(0, 1, 250)])  # slide scores are probabilities
    t = operating_point(y, apart)
    sens, spec = (apart[y == 1] >= t).mean(), (apart[y == 0] < t).mean()
    assert 0.91 <= sens <= 0.96 and spec > 0.95  # sensitivity over 0.90 by a margin, not placed at it
    # close together: reaching sensitivity 0.90 would call most normal slides positive, so the floor holds
    close = expit(np.r_[rng.normal(1, 1, 250), rng.normal(0, 1, 250)])
    t = operating_point(y, close)
    sens, spec = (close[y == 1] >= t).mean(), (close[y == 0] < t).mean()
    assert 0.74 <= spec <= 0.80 and sens < 0.90
    # without a floor, the sensitivity margin alone
    assert operating_point(y, close, specificity=0.0) < t


TOP3 = SlideLevel(weights=(1.0, 0.0), intercept=-2.0, threshold=0.5, tile_flag_p=0.99)


def test_flags_agree_with_the_decision():
    normal = answer(frame([0.1, 0.2, 0.05, 0.6]), TOP3)
    assert normal.decision == NEGATIVE and normal.tiles_flagged == 0
    tumour = answer(frame([0.1, 0.999, 0.998, 0.985]), TOP3)
    assert tumour.decision == POSITIVE and list(tumour.flagged) == [False, True, True, False]
    z = np.log(np.array([0.999, 0.998, 0.985]) / (1 - np.array([0.999, 0.998, 0.985])))
    assert tumour.slide_score == pytest.approx(1 / (1 + np.exp(-(z.mean() - 2.0))))
    # a slide called positive on tiles under the flag level still points at its top tile
    lower = answer(frame([0.1, 0.97, 0.96, 0.95]), TOP3)
    assert lower.decision == POSITIVE and list(lower.flagged) == [False, True, False, False]


def test_a_slide_unlike_the_training_slides_keeps_its_score_but_gets_no_decision_and_no_flags():
    tiles = frame([0.1, 0.999, 0.998, 0.985])
    warning = "This slide does not look like the lymph-node H&E slides the model learned from."
    called, unlike = answer(tiles, TOP3), answer(tiles, TOP3, warning)
    assert called.decision == POSITIVE and called.withheld is None and called.tiles_flagged == 2
    assert unlike.decision is None and unlike.withheld == warning and unlike.tiles_flagged == 0
    assert unlike.slide_score == pytest.approx(called.slide_score) and unlike.tiles_assessed == 4
    # no tile assessed: neither a score nor a decision, and the reason in words
    none = answer(frame([0.9, 0.99], quality=["blur", "out-of-distribution"]), TOP3)
    assert (none.slide_score, none.decision, none.withheld, none.tiles_flagged) == (None, None, NO_TILES, 0)


def test_a_slide_mostly_unseen_is_not_called_negative_but_a_positive_call_stands():
    blurred = ["ok"] * 5 + ["blur"] * 3 + ["background"] * 4  # 3 of 8 tissue tiles unseen: 38%
    low = answer(frame([0.1, 0.2, 0.05, 0.1, 0.3] + [0.5] * 7, quality=blurred), TOP3)
    assert low.decision is None and low.slide_score < TOP3.threshold
    assert low.withheld.startswith("38% of the slide's tissue tiles were not assessed (3 blur)")
    high = answer(frame([0.1, 0.999, 0.998, 0.985, 0.3] + [0.5] * 7, quality=blurred), TOP3)
    assert high.decision == POSITIVE and high.withheld is None
    # glass is not tissue: a slide of a little tissue on much glass is answered
    glass = answer(frame([0.1, 0.2, 0.05, 0.1], quality=["ok"] * 3 + ["background"]), TOP3)
    assert glass.decision == NEGATIVE


def test_an_out_of_focus_normal_slide_gets_no_negative_answer(data_root, tmp_path):
    """Real normal patches, the model's most clearly normal ones, on a slide: answered negative; with 40% of them
    out of focus (blurred here), the gate keeps those from the model and the slide is not called negative."""
    tiles, labels, ids = load_half(data_root, 1)
    pred = Predictor.load(BUNDLE, engine="onnx-int8")
    normal = np.flatnonzero(labels == 0)[:600]
    calm = normal[np.argsort(pred.predict(tiles[normal]).p)[:36]]
    picked = tiles[calm]
    out_of_focus = np.zeros(36, bool)
    out_of_focus[np.random.default_rng(0).choice(36, 15, replace=False)] = True
    said = {}
    for name, slide_tiles in (("sharp", picked), ("blurred", np.where(out_of_focus[:, None, None, None],
                                                                     derived.blurred(picked), picked))):
        path = tmp_path / f"{name}.tiff"
        build(slide_tiles, labels[calm], [ids[i] for i in calm], 6, path)
        result, _ = run_slide(pred, path, tmp_path / "out", progress=False)
        said[name] = result.summary["slide_level"]
    assert said["sharp"]["decision"] == NEGATIVE and said["sharp"]["withheld"] is None
    assert said["blurred"]["decision"] is None and said["blurred"]["slide_score"] < said["blurred"]["threshold"]
    assert "blur" in said["blurred"]["withheld"] and said["blurred"]["withheld"].endswith("not called negative")
    cases = read_cases(write_cases(tmp_path, [row_from_summary(tmp_path / "blurred.tiff", {"slide_level":
                                                                said["blurred"]}, "scored", "")]))
    assert pd.isna(cases.decision[0]) and "blur" in cases.withheld[0]


def test_neighbouring_high_tiles_weigh_more_than_scattered_ones():
    pair = SlideLevel(weights=(0.0, 1.0), intercept=0.0)
    p = [0.99, 0.98, 0.01, 0.01, 0.01]
    together = features(frame(p))  # tiles 0 and 1 touch
    apart = features(frame(p, xs=[0, 288, 96, 192, 384]))  # the same scores, two cells apart
    assert together[0] == pytest.approx(apart[0])
    assert together[1] == pytest.approx(np.log(0.98 / 0.02)) and apart[1] == pytest.approx(np.log(0.01 / 0.99))
    assert answer(frame(p), pair).slide_score > 0.95 > 0.05 > answer(frame(p, xs=[0, 288, 96, 192, 384]), pair).slide_score
    # tiles on the grid's other axis touch too
    column = pd.DataFrame({"x": 480, "y": [960, 1056, 2000], "p": [0.9, 0.9, 0.1]})
    assert features(column)[1] == pytest.approx(np.log(0.9 / 0.1))


def test_tiles_not_assessed_count_neither_toward_the_score_nor_as_flags():
    level = SlideLevel(weights=(1.0, 0.0), intercept=0.0, threshold=0.5, tile_flag_p=0.99)
    p = [0.1, 0.9999, 0.2, 0.15, 0.1]
    everything = answer(frame(p), level)
    gated = answer(frame(p, ["ok", "blurred", "ok", "ok", "ok"]), level)
    assert everything.decision == POSITIVE and everything.tiles_flagged == 1
    assert gated.decision == NEGATIVE and gated.tiles_flagged == 0 and gated.tiles_assessed == 4
    assert gated.slide_score == pytest.approx(answer(frame([0.1, 0.2, 0.15, 0.1]), level).slide_score)
    none = answer(frame(p[:3], ["dark", "blurred", "empty"]), level)
    assert none.slide_score is None and none.decision is None and none.tiles_flagged == 0


def test_a_slide_larger_than_the_case_slides_is_read_lower_by_the_size_rule():
    level = replace(TOP3, intercept=-6.0, tail_scale=1.5, reference_tiles=50)
    assert level.size_shift(10) == level.size_shift(50) == 0.0  # smaller slides keep the fitted levels
    assert level.size_shift(500) == pytest.approx(1.5 * np.log(10))
    assert level.flag_p(50) == pytest.approx(0.99) and level.flag_p(500) > 0.999
    rng = np.random.default_rng(0)
    top = [0.9995, 0.9993, 0.9992]
    small = frame(top + list(rng.uniform(0.01, 0.3, 47)))
    large = frame(top + list(rng.uniform(0.01, 0.3, 497)))
    # the same three tiles: alarms on a slide of 50 tiles, nothing remarkable among 500
    assert answer(small, level).decision == POSITIVE and answer(small, level).tiles_flagged == 3
    on_large = answer(large, level)
    assert on_large.decision == NEGATIVE and on_large.tiles_flagged == 0 and on_large.flag_p == level.flag_p(500)
    assert on_large.slide_score < answer(large, replace(level, tail_scale=0.0)).slide_score  # the rule decides
    # the card carries the rule, and reads it back
    block = card_block(level, {}, {}, {})
    assert SlideLevel.from_card({"slide_level": block}) == level


def test_the_shipped_size_rule_keeps_normal_slides_quiet_as_they_grow():
    block = CARD["slide_level"]
    level = SlideLevel.from_card(CARD)
    assert level.tail_scale > 0 and level.reference_tiles == block["parameters"]["reference_tiles"] > 0
    rows = {r["factor"]: r for r in block["size_check"]}
    # at the case slides' own size the rule barely acts (only on slides above the median's tile count)
    assert abs(rows[1]["with_size_rule"]["normal_called_positive"] - rows[1]["without"]["normal_called_positive"]) <= 0.05
    for k in (4, 8):
        rule, plain = rows[k]["with_size_rule"], rows[k]["without"]
        # without the rule most normal slides four times larger are called suspicious, most of those cleared at
        # the case slides' own size among them, and they show more flags
        own = rows[1]["without"]["normal_called_positive"]
        assert plain["normal_called_positive"] >= max(0.5, own + (1 - own) / 2)
        assert plain["normal_flags_median"] >= 3
        assert rule["normal_called_positive"] <= rows[1]["with_size_rule"]["normal_called_positive"]
        assert rule["normal_flags_median"] <= 3


def test_fitting_on_a_fixed_case_set_reaches_the_sensitivity_target_and_is_repeatable(data_root, tmp_path):
    job = BatchJob(str(BUNDLE), "onnx-int8", str(tmp_path))
    first = fit_and_measure(job, data_root, tmp_path, n=8, second_look=8, seed=4)
    again = fit_and_measure(job, data_root, tmp_path, n=8, second_look=8, seed=4)  # scored slides reused
    assert first == again
    fitted, tested = first["fit_set"], first["test_set"]
    # fitted on both halves; held out by 2-fold cross-validation, each half answered by the fit on the other
    assert fitted["slides"] == tested["slides"] == 16 and fitted["positive_slides"] == 8 and tested["folds"] == 2
    assert fitted["specificity"] >= SPECIFICITY_FLOOR  # the floor holds on the slides it was fitted on
    folds = list(first["test_set_by_fold"].values())
    assert [f["slides"] for f in folds] == [8, 8]
    for rate, cls in (("sensitivity", "positive_slides"), ("specificity", None)):
        count = [f[cls] if cls else f["slides"] - f["positive_slides"] for f in folds]
        assert tested[rate] == pytest.approx(sum(f[rate] * c for f, c in zip(folds, count)) / sum(count), abs=1e-3)
    # a lab that wants every fit-set metastasis called, whatever the normal slides, moves the threshold down
    strict = fit_and_measure(job, data_root, tmp_path, n=8, second_look=8, seed=4, sensitivity=1.0, specificity=0.0)
    assert strict["fit_set"]["sensitivity"] == 1.0 and strict["threshold"] <= first["threshold"]
    assert "--sensitivity 1.0 --specificity 0.0" in strict["command"]
    assert strict["threshold_rule"] == threshold_rule(1.0, 0.0)
    # the slide-level flags are far fewer on normal slides than the tile decision's
    assert tested["flagged_on_negatives_median"] < tested["tile_decision_on_negatives_median"]
    # each slide's top tiles had their second look, with 8 views
    for path in (tmp_path / "scored-h1").glob("*.tiles.csv"):
        tiles = pd.read_csv(path)
        assert (tiles.views == 8).sum() == min(8, (tiles.quality == "ok").sum())
        assert (tiles.spread[tiles.views == 1] == 0).all()
        # the file calls tumour exactly the flagged tiles (what QuPath colours red); the tile threshold's call
        # is kept beside it, and read back as the pipeline's own decision
        assert ((tiles.decision == "tumour") == tiles.flagged).all()
        assert (tiles.tile_call == read_tiles(path).decision).all()
        summary = json.loads(path.with_name(path.name.replace(".tiles.csv", ".summary.json")).read_text())
        assert summary["tiles_flagged"] == summary["slide_level"]["tiles_flagged"] == tiles.flagged.sum()
        assert summary["tiles_above_threshold"] == (tiles.tile_call == "tumour").sum()
    # larger slides made of the test half: the size rule keeps their normal slides' flags down
    largest = first["size_check"][-1]
    assert largest["assessed_tiles_median"] > 2 * first["parameters"]["reference_tiles"]
    assert largest["with_size_rule"]["normal_flags_median"] < largest["without"]["normal_flags_median"]
    cases = pd.read_csv(tmp_path / "scored-h1" / "cases.csv")
    assert list(cases.status) == ["scored"] * 8 or list(cases.status) == ["skipped"] * 8


def test_an_operating_point_outside_zero_to_one_is_refused(tmp_path, capsys):
    from model_training.cli.slide_level import main

    with pytest.raises(SystemExit) as stop:
        main(["--data", str(tmp_path), "--work", str(tmp_path / "w"), "--sensitivity", "95"])
    assert stop.value.code == 2 and "--sensitivity 95.0: a share" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["--data", str(tmp_path), "--work", str(tmp_path / "w"), "--specificity", "1"])
    assert stop.value.code == 2 and "--specificity 1.0: a share" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # refused before anything was built
