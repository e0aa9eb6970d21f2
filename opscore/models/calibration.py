"""Calibrated probabilities, so accuracy can be estimated before labels arrive (CBPE).

A model's probabilities are not frequencies: an ensemble says 0.7 where 0.8 of such rows turn out
positive. Estimating accuracy from probabilities needs frequencies, so an isotonic regression fitted
on the holdout maps a logged probability to the rate observed there. It is stored as knots (x, y)
that ``np.interp`` follows, so applying it needs neither scikit-learn nor the holdout.

The map applies to the probability serving logs: the positive (last) class's for a binary model,
the top class's for a multiclass one, where it maps to the chance the prediction is right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from opscore.data.labelled_traffic import class_key, class_keys
from opscore.exceptions import BadInputError

# Below this many holdout rows an isotonic fit follows noise; the probabilities are used as they are.
MIN_ROWS = 20


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _identity(kind: str, rows: int, reason: str, **extra: Any) -> dict[str, Any]:
    return {"method": "identity", "kind": kind, "rows": rows, "reason": reason, "x": [0.0, 1.0], "y": [0.0, 1.0],
            **extra}


def fit_calibration(probabilities: np.ndarray, truth: Sequence[Any], classes: Sequence[Any]) -> dict[str, Any]:
    """Fit the map from logged probability to observed frequency on holdout probabilities (rows × classes)."""
    probabilities = np.asarray(probabilities, dtype=float)
    truth = np.asarray(truth, dtype=object)
    classes = [_plain(c) for c in classes]
    if probabilities.ndim != 2 or probabilities.shape != (truth.size, len(classes)):
        raise BadInputError(f"calibration needs one probability per class per row: got shape {probabilities.shape} "
                            f"for {truth.size} rows and {len(classes)} classes")
    if len(classes) < 2:
        raise BadInputError("calibration needs a classifier with at least two classes")
    if len(classes) == 2:
        kind, extra = "positive_class", {"positive_class": classes[1]}
        logged = probabilities[:, 1]
        happened = np.array([t == classes[1] for t in truth], dtype=float)
    else:
        kind, extra = "top_class", {}
        logged = probabilities.max(axis=1)
        predicted = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
        happened = (predicted == truth).astype(float)
    if truth.size < MIN_ROWS:
        return _identity(kind, int(truth.size), f"only {truth.size} holdout rows (fewer than {MIN_ROWS})", **extra)
    if happened.min() == happened.max():
        return _identity(kind, int(truth.size), "the holdout has a single outcome; there is nothing to calibrate against",
                         **extra)
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(logged, happened)
    return {"method": "isotonic", "kind": kind, "rows": int(truth.size), **extra,
            "x": isotonic.X_thresholds_.tolist(), "y": isotonic.y_thresholds_.tolist()}


def calibrate(calibration: dict[str, Any], probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Calibrated probabilities for logged ones; missing stays missing."""
    values = np.asarray(probabilities, dtype=float)
    calibrated = np.interp(np.clip(values, 0.0, 1.0), calibration["x"], calibration["y"])
    return np.where(np.isnan(values), np.nan, calibrated)


def chances_right(calibration: dict[str, Any], classes: Sequence[Any], predictions: Sequence[Any],
                  probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per row, the calibrated chance that the logged prediction is right (NaN without a probability).

    Binary: the calibrated positive-class probability for a positive prediction, one minus it for a
    negative one. Multiclass: the calibrated top-class probability. The same at ingestion (rolled up
    per bucket) and when estimating from raw rows, so both give the same estimate.
    """
    calibrated = calibrate(calibration, probabilities)
    if calibration.get("kind") == "top_class":
        return calibrated
    positive = class_key(calibration.get("positive_class"))
    if positive is None and classes:
        positive = class_key(classes[-1])
    predicted_positive = np.array([key == positive for key in class_keys(predictions)], dtype=bool)
    return np.where(predicted_positive, calibrated, 1 - calibrated)
