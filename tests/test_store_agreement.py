"""Agreement statistics: Fleiss' kappa against the textbook example, Cohen's kappa against sklearn, reader
calls, sensitivity and specificity against the ground truth, bootstrap intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from app.review import agreement, case_agreement


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories, kappa = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert agreement.fleiss(table) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_kappa_of_two_raters_is_scotts_pi():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    b = np.array([1, 0, 0, 0, 1, 0, 1, 0])
    counts = np.stack([(a == 0).astype(int) + (b == 0), (a == 1).astype(int) + (b == 1)], 1)
    pa = (np.r_[a, b]).mean()
    pi = ((a == b).mean() - (pa ** 2 + (1 - pa) ** 2)) / (1 - (pa ** 2 + (1 - pa) ** 2))
    assert agreement.fleiss(counts) == pytest.approx(pi, abs=1e-12)


def test_cohen_kappa_agrees_with_sklearn_and_has_a_ci_around_it():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 200)
    b = np.where(rng.random(200) < 0.8, a, 1 - a)
    k, lo, hi = agreement.cohen(a, b)
    assert k == pytest.approx(cohen_kappa_score(a, b))
    assert lo < k < hi and hi - lo < 0.3
    assert agreement.cohen(a, b) == (k, lo, hi)  # fixed seed


def _reviews(rows):
    return pd.DataFrame(rows, columns=["item_id", "reviewer", "decision", "model_decision", "label"])


def test_reader_calls_and_agreement_tables():
    rows = []
    for i in range(20):
        model = "tumour" if i % 2 else "normal"
        label = 1 if i < 10 else 0
        rows.append((i, "a", "agree", model, label))
        rows.append((i, "b", "agree" if i % 4 else "disagree", model, label))
        rows.append((i, "c", "unsure" if i == 0 else "agree", model, label))
    df = _reviews(rows)
    calls = agreement.reader_calls(df.iloc[:4])  # item 0 (model normal): a agrees, b disagrees, c unsure
    assert calls.iloc[0] == 0 and calls.iloc[1] == 1 and np.isnan(calls.iloc[2]) and calls.iloc[3] == 1
    vm = agreement.vs_model(df).set_index("reader")
    assert vm.loc["a", "kappa"] == pytest.approx(1.0) and vm.loc["a", "agree"] == 20
    assert vm.loc["c", "unsure"] == 1 and vm.loc["c", "n"] == 19
    assert vm.loc["b", "disagree"] == 5 and vm.loc["b", "kappa"] < 1
    vt = agreement.vs_truth(df).set_index("reader")
    # reader a calls what the model calls: tumour on odd items; items 0-9 are tumour -> 5/10 found
    assert vt.loc["a", "sensitivity"] == pytest.approx(0.5) and vt.loc["a", "specificity"] == pytest.approx(0.5)
    assert vt.loc["a", "n"] == 20 and vt.loc["a", "sens_low"] <= 0.5 <= vt.loc["a", "sens_high"]
    br = agreement.between_readers(df).set_index(["reader_a", "reader_b"])
    assert br.loc[("a", "c"), "n"] == 19 and br.loc[("a", "c"), "kappa"] == pytest.approx(1.0)
    ref = cohen_kappa_score(agreement.reader_calls(df[df.reviewer == "a"]), agreement.reader_calls(df[df.reviewer == "b"]))
    assert br.loc[("a", "b"), "kappa"] == pytest.approx(ref)
    fl = agreement.fleiss_all(df)
    assert fl["readers"] == 3 and fl["n"] == 19 and -1 <= fl["kappa"] <= 1


def test_one_class_only_gives_no_kappa_rather_than_a_wrong_one():
    k, lo, hi = agreement.cohen([1, 1, 1], [1, 1, 1])
    assert np.isnan(k)


def test_sensitivity_and_specificity_carry_wilson_intervals():
    """56 of 61 tumour tiles found: Wilson gives [0.822, 0.964] (a bootstrap gave [0.852, 0.984])."""
    rows = [(i, "a", "agree" if i < 56 else "disagree", "tumour", 1) for i in range(61)]
    rows += [(100 + i, "a", "agree", "normal", 0) for i in range(10)]
    vt = agreement.vs_truth(_reviews(rows)).set_index("reader")
    assert vt.loc["a", "sensitivity"] == pytest.approx(56 / 61)
    assert (vt.loc["a", "sens_low"], vt.loc["a", "sens_high"]) == pytest.approx((0.822, 0.964), abs=5e-4)
    assert (vt.loc["a", "spec_low"], vt.loc["a", "spec_high"]) == pytest.approx((0.722, 1.0), abs=5e-4)


def test_krippendorffs_alpha_keeps_the_items_a_reader_skipped():
    """Three readers, 120 items; reader c called only 28 of them. Fleiss' kappa can use those 28 only;
    Krippendorff's alpha uses all 120, and equals Fleiss' kappa's large-sample value when nothing is missing."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 120)
    rows = []
    for reader, skip in (("a", 0), ("b", 0), ("c", 92)):
        for i in range(120):
            if reader == "c" and i >= 120 - skip:
                continue
            call = truth[i] if rng.random() < 0.85 else 1 - truth[i]
            rows.append((i, reader, "agree" if call == 1 else "disagree", "tumour", truth[i]))
    fl = agreement.fleiss_all(_reviews(rows))
    assert fl["n"] == 28 and fl["alpha_n"] == 120
    assert fl["alpha_low"] < fl["alpha"] < fl["alpha_high"] and fl["alpha_high"] - fl["alpha_low"] < 0.35
    assert 0.3 < fl["alpha"] < 0.8
    # Krippendorff (2011) for two values: alpha = 1 - (n - 1) * o_01 / (n_0 * n_1), with o_01 the coincidences
    # of a 0 and a 1 within units (each unit's pairs weighted 1 / (m_u - 1)); a missing call leaves a unit short
    calls = np.array([[0, 1, 1, 0, 1, 0, 0, 1], [0, 1, 1, 0, 1, 1, 0, 1], [0, 1, 0, np.nan, 1, 0, 0, np.nan]])
    m = (~np.isnan(calls)).sum(0)
    ones = np.nansum(calls, 0)
    zeros = m - ones
    o_01 = (zeros * ones / (m - 1)).sum()
    assert agreement.alpha(calls) == pytest.approx(1 - (m.sum() - 1) * o_01 / (zeros.sum() * ones.sum()), abs=1e-9)
    assert np.isnan(agreement.alpha(np.array([[1.0, 1.0], [1.0, 1.0]])))  # one value only: undefined


def test_kappa_with_a_model_whose_call_never_varies_is_undefined_not_zero():
    """Every queued tile called tumour by the model: kappa with it is undefined ("—"), not 0.000 [0.000, 0.000];
    and a pair of readers with no item in common is left out rather than shown with n = 0."""
    rows = [(i, "a", "agree" if i % 3 else "disagree", "tumour", None) for i in range(12)]
    rows += [(100 + i, "b", "agree", "tumour", None) for i in range(5)]
    vm = agreement.vs_model(_reviews(rows)).set_index("reader")
    assert np.isnan(vm.loc["a", "kappa"]) and np.isnan(vm.loc["a", "ci_low"]) and np.isnan(vm.loc["a", "ci_high"])
    assert agreement.between_readers(_reviews(rows)).empty  # a and b share no item
    assert agreement.fleiss_all(_reviews(rows + [(200, "c", "agree", "tumour", None)])) is None



def test_slide_kappa_leaves_out_the_cases_the_model_gave_no_answer_on():
    cases = pd.DataFrame({"slide": list("abcde"), "truth": [1, 0, 1, 0, 1],
                          "decision": ["metastasis", "no_metastasis", "metastasis", "no_metastasis", None]})
    signouts = cases.assign(reviewer="dr. a", call=["metastasis", "no_metastasis", "metastasis", "no_metastasis",
                                                    "no_metastasis"], model_decision=cases.decision)
    rows = case_agreement.table(signouts, cases).set_index("reader")
    reader, model = rows.loc["dr. a"], rows.loc[case_agreement.MODEL]
    assert reader.cases == 5 and reader.deferred == 0 and reader.kappa == 1.0  # agrees on all four answered
    assert model.deferred == 1 and model.with_truth == 4 and model.sensitivity == 1.0
