"""Probability calibration: logged probabilities mapped to the frequencies the holdout showed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opscore.exceptions import BadInputError
from opscore.models.calibration import calibrate, fit_calibration


def overconfident(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose true chance is sigmoid(t) while the model says sigmoid(3t): sure of itself, too sure."""
    t = rng.normal(0, 1.2, n)
    truth = (rng.random(n) < 1 / (1 + np.exp(-t))).astype(int)
    said = 1 / (1 + np.exp(-3 * t))
    return np.column_stack([1 - said, said]), truth


def calibration_error(probability: np.ndarray, truth: np.ndarray) -> float:
    """Mean gap between said and observed frequency over ten probability bins."""
    bins = np.minimum((probability * 10).astype(int), 9)
    gaps = [abs(probability[bins == b].mean() - truth[bins == b].mean()) for b in range(10) if (bins == b).sum() > 30]
    return float(np.mean(gaps))


def test_binary_calibration_turns_an_overconfident_model_into_frequencies():
    rng = np.random.default_rng(3)
    holdout, truth = overconfident(3_000, rng)
    calibration = fit_calibration(holdout, truth, np.array([0, 1]))
    assert calibration["method"] == "isotonic" and calibration["kind"] == "positive_class"
    assert calibration["positive_class"] == 1 and type(calibration["positive_class"]) is int
    assert json.loads(json.dumps(calibration)) == calibration
    fresh, fresh_truth = overconfident(20_000, rng)
    raw = calibration_error(fresh[:, 1], fresh_truth)
    fixed = calibration_error(calibrate(calibration, fresh[:, 1]), fresh_truth)
    assert raw > 0.08 and fixed < 0.03


def test_multiclass_calibration_maps_the_top_probability_to_the_chance_of_being_right():
    rng = np.random.default_rng(4)
    n = 4_000
    sharp = rng.dirichlet([0.6, 0.6, 0.6], n)
    truth = np.array([rng.choice(["a", "b", "c"], p=p) for p in (sharp + 1) / 4])  # truth is far less sure
    calibration = fit_calibration(sharp, truth, ["a", "b", "c"])
    assert calibration["kind"] == "top_class" and "positive_class" not in calibration
    right = np.array(["a", "b", "c"])[sharp.argmax(axis=1)] == truth
    estimated = calibrate(calibration, sharp.max(axis=1))
    assert sharp.max(axis=1).mean() - right.mean() > 0.2
    assert abs(estimated.mean() - right.mean()) < 0.01


def test_too_little_or_one_sided_holdouts_keep_the_probabilities_as_they_are():
    few = fit_calibration(np.array([[0.2, 0.8]] * 10), [1] * 5 + [0] * 5, [0, 1])
    assert few["method"] == "identity" and "only 10 holdout rows" in few["reason"]
    one_sided = fit_calibration(np.tile([[0.3, 0.7]], (50, 1)), [1] * 50, [0, 1])
    assert one_sided["method"] == "identity" and "single outcome" in one_sided["reason"]
    assert calibrate(few, [0.0, 0.25, 1.0]).tolist() == [0.0, 0.25, 1.0]


def test_missing_probabilities_stay_missing_and_values_outside_are_clipped():
    rng = np.random.default_rng(5)
    calibration = fit_calibration(*overconfident(500, rng), [0, 1])
    out = calibrate(calibration, [np.nan, -0.5, 1.5])
    assert np.isnan(out[0]) and 0 <= out[1] <= out[2] <= 1


def test_probabilities_must_match_rows_and_classes():
    with pytest.raises(BadInputError, match="one probability per class per row"):
        fit_calibration(np.zeros((5, 2)), [0, 1, 0], [0, 1])
    with pytest.raises(BadInputError, match="at least two classes"):
        fit_calibration(np.ones((3, 1)), [0, 0, 0], [0])
