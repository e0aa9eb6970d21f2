"""The line fit's slope interval and prediction interval agree with statsmodels OLS on the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from opscore.exceptions import BadInputError
from opscore.operations.linear_trend import fit_line


def test_slope_and_prediction_intervals_match_statsmodels():
    rng = np.random.default_rng(3)
    x = np.arange(30, dtype=float)
    y = 1_000 + 25 * x + rng.normal(0, 40, size=30)
    fit = fit_line(x, y, confidence=0.9)
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    low, high = ols.conf_int(alpha=0.1)[1]
    assert fit.slope == pytest.approx(ols.params[1]) and fit.intercept == pytest.approx(ols.params[0])
    assert (fit.slope_low, fit.slope_high) == pytest.approx((low, high))
    frame = ols.get_prediction(np.array([[1.0, 60.0], [1.0, 90.0]])).summary_frame(alpha=0.1)
    fitted, pi_low, pi_high = fit.predict(np.array([60.0, 90.0]))
    assert fitted == pytest.approx(frame["mean"].to_numpy())
    assert pi_low == pytest.approx(frame["obs_ci_lower"].to_numpy())
    assert pi_high == pytest.approx(frame["obs_ci_upper"].to_numpy())


def test_a_known_slope_is_found_and_flat_noise_is_not_rising():
    rng = np.random.default_rng(8)
    x = np.arange(7, dtype=float)
    assert fit_line(x, 100 + 10 * x + rng.normal(0, 1, 7)).rising
    assert not fit_line(x, 100 + rng.normal(0, 5, 7)).rising


def test_too_few_points_are_refused():
    with pytest.raises(BadInputError, match="at least 3 points"):
        fit_line(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
