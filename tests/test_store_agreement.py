"""Agreement statistics: Fleiss' kappa against the textbook example, Cohen's kappa against sklearn, reader
calls, sensitivity and specificity against the ground truth, bootstrap intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from app.review import agreement


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
