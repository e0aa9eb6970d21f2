"""The reference profile is computed once and describes the data exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opscore.data.features import infer_schema
from opscore.data.profile import QUANTILE_BINS, categorical_profile, numeric_profile, reference_profile


def test_numeric_profile_bins_hold_every_finite_value():
    values = np.random.default_rng(0).normal(10, 2, 10_000)
    values[:100] = np.nan
    profile = numeric_profile(values)
    assert sum(profile["counts"]) == 9_900
    assert len(profile["edges"]) == QUANTILE_BINS + 1
    # Quantile bins hold about the same number of values each.
    assert max(profile["counts"]) - min(profile["counts"]) <= 2
    assert profile["missing_share"] == 0.01
    assert abs(profile["mean"] - np.nanmean(values)) < 1e-9
    assert abs(profile["std"] - np.nanstd(values, ddof=1)) < 1e-9


def test_numeric_profile_of_a_constant_and_an_empty_column():
    constant = numeric_profile(np.full(50, 3.0))
    assert constant["edges"] == [3.0] and constant["counts"] == [50]
    empty = numeric_profile(np.array([np.nan, np.nan]))
    assert empty["missing_share"] == 1.0 and empty["counts"] == []


def test_categorical_profile_counts_and_missing():
    profile = categorical_profile(pd.Series(["a", "b", "a", None]))
    assert profile["frequencies"] == {"a": 2, "b": 1} and profile["missing_share"] == 0.25


def test_reference_profile_covers_every_feature(demo_frame):
    features = demo_frame.drop(columns=["default"])
    schema = infer_schema(features, "default", "classification", [0, 1])
    profile = reference_profile(features, schema, np.linspace(0, 1, 100))
    assert set(profile["columns"]) == set(features.columns)
    assert profile["columns"]["employment_type"]["kind"] == "categorical"
    assert profile["prediction"]["n"] == 100
