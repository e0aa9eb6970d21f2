"""The multivariate drift reference: quiet on data like the training data, loud on a broken correlation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from opscore.data.features import infer_schema
from opscore.data.multivariate import alert_bounds, fit_multivariate_reference, reconstruction_errors
from opscore.exceptions import BadInputError


def applications(n: int, rng: np.random.Generator, correlation: float = 0.8) -> pd.DataFrame:
    """Income and loan move together (``correlation``), the rest is independent; marginals never change."""
    income = rng.normal(size=n)
    loan = correlation * income + np.sqrt(1 - correlation ** 2) * rng.normal(size=n)
    score = rng.normal(690, 55, n)
    debt = 0.6 * (score - 690) / 55 + 0.8 * rng.normal(size=n)
    frame = pd.DataFrame({"income": income, "loan": loan, "score": score, "debt": debt,
                          "home": rng.choice(["rent", "mortgage", "own"], n, p=[0.45, 0.4, 0.15]),
                          "accounts": rng.poisson(6, n).astype(float)})
    frame.loc[rng.random(n) < 0.05, "score"] = np.nan
    return frame


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(11)
    train, holdout = applications(8_000, rng), applications(2_000, rng)
    schema = infer_schema(train, "default", "classification", [0, 1])
    return fit_multivariate_reference(train, schema, holdout), rng


def test_reference_is_plain_json_and_keeps_65_percent_of_the_variance(fitted):
    reference, _ = fitted
    assert json.loads(json.dumps(reference)) == reference
    assert reference["variance_kept"] == 0.65 and 0.65 <= reference["explained_variance"] < 1
    assert len(reference["components"]) < len(reference["encoding"])
    assert {c["category"] for c in reference["encoding"] if c["kind"] == "category"} == {"rent", "mortgage", "own"}
    assert reference["bounds_from"] == "holdout" and reference["reference_rows"] == 2_000
    assert reference["lower_bound"] < reference["mean_error"] < reference["upper_bound"]


def test_data_like_the_training_data_stays_within_the_bounds(fitted):
    reference, rng = fitted
    means = [reconstruction_errors(reference, applications(500, rng)).mean() for _ in range(60)]
    inside = [reference["lower_bound"] <= m <= reference["upper_bound"] for m in means]
    assert sum(inside) >= 58


def test_a_broken_correlation_with_unchanged_marginals_raises_the_error_beyond_the_upper_bound(fitted):
    reference, rng = fitted
    before, after = applications(500, rng), applications(500, rng, correlation=0.0)
    # Column by column nothing changed: a univariate test sees the same distributions.
    assert all(ks_2samp(before[c].dropna(), after[c].dropna()).pvalue > 0.01 for c in ("income", "loan"))
    means = [reconstruction_errors(reference, applications(500, rng, correlation=0.0)).mean() for _ in range(10)]
    assert all(m > reference["upper_bound"] for m in means)


def test_bounds_narrow_with_the_chunk_size(fitted):
    reference, _ = fitted
    assert alert_bounds(reference, 500) == (reference["lower_bound"], reference["upper_bound"])
    small, large = alert_bounds(reference, 100), alert_bounds(reference, 5_000)
    assert small[1] - small[0] > large[1] - large[0]
    with pytest.raises(BadInputError, match="at least one row"):
        alert_bounds(reference, 0)


def test_gaps_unseen_categories_and_text_numbers_are_scored_and_missing_columns_named(fitted):
    reference, rng = fitted
    rows = applications(3, rng).astype(object)
    rows.loc[0, "income"] = None
    rows.loc[1, "home"] = "houseboat"
    rows.loc[2, "accounts"] = "7"
    errors = reconstruction_errors(reference, rows)
    assert errors.shape == (3,) and np.isfinite(errors).all()
    with pytest.raises(BadInputError, match="'loan'"):
        reconstruction_errors(reference, rows.drop(columns="loan"))


def test_one_feature_is_skipped_with_a_reason():
    frame = pd.DataFrame({"x": np.arange(50.0)})
    reference = fit_multivariate_reference(frame, infer_schema(frame, "y", "regression", None))
    assert "at least two" in reference["skipped"]
    with pytest.raises(BadInputError, match="no multivariate drift reference"):
        reconstruction_errors(reference, frame)
