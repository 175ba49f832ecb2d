"""Platt calibration (temperature + bias): fitting, the card's NLL check and how the Predictor applies it."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

from model_training.evaluation.metrics import (crossfit_nll, fit_platt, fit_temperature, nll, rates_ci,
                                               threshold_for_sensitivity, threshold_for_specificity,
                                               threshold_with_margin)


def _shifted_labels(n: int = 20000, t: float = 1.6, b: float = 0.8, seed: int = 0):
    """Logits whose true probability is sigmoid(z / t + b): a model that is over-confident and biased."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, n)
    return (rng.random(n) < expit(z / t + b)).astype(int), z


def test_platt_recovers_temperature_and_bias():
    y, z = _shifted_labels()
    t, b = fit_platt(y, z)
    assert t == pytest.approx(1.6, rel=0.06) and b == pytest.approx(0.8, abs=0.06)


def test_bias_lowers_nll_where_temperature_alone_cannot():
    y, z = _shifted_labels()
    t, b = fit_platt(y, z)
    t_only = fit_temperature(y, z)
    assert nll(y, expit(z / t + b)) < nll(y, expit(z / t_only)) - 0.01
    # held-out folds keep the gain: the bias is not an artefact of scoring on the fitting data
    assert crossfit_nll(y, z, "platt") < crossfit_nll(y, z, "temperature") - 0.01


def test_platt_on_an_unbiased_model_is_temperature_scaling():
    y, z = _shifted_labels(b=0.0)
    t, b = fit_platt(y, z)
    assert abs(b) < 0.06 and t == pytest.approx(fit_temperature(y, z), rel=0.03)


@pytest.mark.slow
def test_card_records_calibration_and_predictor_applies_it(tiny_bundle, valid_tiles, tmp_path):
    from model_training.inference.predictor import Predictor

    card = json.loads((tiny_bundle / "model_card.json").read_text())
    for mode in ("single", "tta"):
        assert {"temperature", "bias", "threshold"} <= set(card["calibration"][mode])
        check = card["validation"]["calibration_nll"][mode]
        assert check["nll_platt"] <= check["nll_temperature"] + 1e-9 <= check["nll_uncalibrated"] + 1e-9
    # the stored validation probabilities are the calibrated ones
    stored = pd.read_csv(tiny_bundle / "val_predictions.csv")
    cal = card["calibration"]["tta"]
    assert np.allclose(stored["p"], expit(stored["logit"] / cal["temperature"] + cal["bias"]), atol=1e-5)

    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    card["calibration"]["single"].update(temperature=2.0, bias=-1.5)
    (copy / "model_card.json").write_text(json.dumps(card))
    r = Predictor.load(copy).predict(valid_tiles[0][:8])
    assert np.allclose(r.p, expit(r.logit / 2.0 - 1.5), atol=1e-6)


@pytest.mark.slow
def test_recalibrate_keeps_the_weights_and_training_record(tiny_bundle, data_root, valid_tiles, tmp_path):
    from model_training.bundle.files import sha256
    from model_training.cli.recalibrate import main
    from model_training.inference.predictor import Predictor

    out = tmp_path / "recal"
    assert main(["--bundle", str(tiny_bundle), "--data", str(data_root), "--limit", "300", "--out", str(out)]) == 0
    old = json.loads((tiny_bundle / "model_card.json").read_text())
    new = json.loads((out / "model_card.json").read_text())
    assert new["sha256"] == sha256(out / "model.keras")
    assert new["training"] == old["training"] and new["recalibration"]["source_sha256"] == old["sha256"]
    assert new["recalibration"]["command"].startswith("python -m model_training.cli.recalibrate --bundle ")
    assert new["validation"]["tta"]["n"] == 300 and new["validation"]["tta"]["at_threshold"]["sensitivity"] >= 0.95
    assert (out / "history.csv").read_bytes() == (tiny_bundle / "history.csv").read_bytes()
    # same network: raw logits agree; only the calibration differs
    a, b = Predictor.load(tiny_bundle), Predictor.load(out)
    x = valid_tiles[0][:16]
    assert np.allclose(a.logits(x), b.logits(x), atol=1e-5)
    # the quality gate is fitted again on the site's tiles: its own limits, recorded and hash-checked on load
    gate = new["quality_gate"]
    assert gate["source_sha256"] == new["sha256"] and "150 validation tiles (even positions)" in gate["fitted_on"]
    assert b.gate is not None and b.gate.limits == pytest.approx(gate["limits"])
    assert b.gate.limits != pytest.approx(a.gate.limits)
    with pytest.raises(SystemExit, match="must be a new directory"):
        main(["--bundle", str(out), "--data", str(data_root), "--out", str(out)])


def test_margin_threshold_keeps_true_sensitivity_on_new_samples():
    """Positives' scores drawn from a known distribution: the fitted-exactly threshold gives true sensitivity
    below 0.95 about half the time, the margin threshold only rarely."""
    rng = np.random.default_rng(1)
    below_exact = below_margin = 0
    reps = 60
    for _ in range(reps):
        pos, neg = rng.normal(2.0, 1.0, 1400), rng.normal(0.0, 1.0, 1500)
        y, p = np.r_[np.ones(1400), np.zeros(1500)], np.r_[pos, neg]
        exact, margin = threshold_for_sensitivity(y, p), threshold_with_margin(y, p, n_boot=500)
        assert margin <= exact
        below_exact += norm.sf(exact, 2.0, 1.0) < 0.95
        below_margin += norm.sf(margin, 2.0, 1.0) < 0.95
    assert below_exact >= reps * 0.3
    assert below_margin <= reps * 0.1


def _wilson_low(k: int, n: int, z: float = 1.959964) -> float:
    p = k / n
    return (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def test_specificity_floor_keeps_the_fewest_negatives_its_interval_allows():
    y, p = np.r_[np.zeros(100), np.ones(5)], np.r_[np.arange(100) / 100, np.full(5, 0.5)]
    t = threshold_for_specificity(y, p, 0.70)
    below = int((p[y == 0] < t).sum())
    # the Wilson lower bound (written out here) clears 0.70 with `below` negatives and not with one fewer
    assert _wilson_low(below, 100) >= 0.70 > _wilson_low(below - 1, 100)
    assert 74 <= below <= 80  # a margin over the 70 a point estimate would keep
    assert (p[y == 0] >= t).sum() == 100 - below  # the rest are called positive at or above it
    assert threshold_for_specificity(y, p, 0.0) == float("-inf")  # no floor
    # five negatives cannot show 0.90 with confidence: the threshold then calls none of them positive
    few = threshold_for_specificity(np.zeros(5), np.arange(5.0), 0.90)
    assert 4.0 < few < 4.0 + 1e-9
    with pytest.raises(ValueError, match="needs negatives"):
        threshold_for_specificity(np.ones(3), np.arange(3.0))


def test_specificity_floor_holds_on_new_negatives_where_the_exact_fit_does_not():
    """Negatives drawn from a known distribution: the threshold placed where 250 of them show specificity 0.70
    exactly gives a true specificity below 0.70 about half the time, the floor with its interval rarely."""
    rng = np.random.default_rng(3)
    below_exact = below_floor = 0
    reps = 60
    for _ in range(reps):
        neg = np.sort(rng.normal(0.0, 1.0, 250))
        exact = np.nextafter(neg[int(np.ceil(0.7 * 250)) - 1], np.inf)
        floor = threshold_for_specificity(np.zeros(250), neg, 0.70)
        assert floor >= exact
        below_exact += norm.cdf(exact) < 0.70
        below_floor += norm.cdf(floor) < 0.70
    assert below_exact >= reps * 0.3
    assert below_floor <= reps * 0.1


def test_rates_ci_brackets_the_observed_rates():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(500), np.zeros(500)]
    p = np.r_[rng.normal(1.5, 1, 500), rng.normal(0, 1, 500)]
    ci = rates_ci(y, p, 0.5)
    sens, spec = (p[y == 1] >= 0.5).mean(), (p[y == 0] < 0.5).mean()
    assert ci["sensitivity_ci95"][0] < sens < ci["sensitivity_ci95"][1]
    assert ci["specificity_ci95"][0] < spec < ci["specificity_ci95"][1]
    assert ci["sensitivity_ci95"][1] - ci["sensitivity_ci95"][0] < 0.1
