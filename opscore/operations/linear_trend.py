"""A straight line through a short series, with the intervals an operator needs to trust it.

The performance trend asks whether daily p95 latency is rising (the slope and its confidence
interval) and capacity planning asks how many requests a day to expect (a prediction interval,
wider than the interval of the mean because one future day varies around the line). Ordinary least
squares with Student-t intervals; tests check both against statsmodels on the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from opscore.exceptions import BadInputError


@dataclass(frozen=True)
class LineFit:
    """``y ≈ intercept + slope·x`` over ``n`` points, with the residual spread and the t quantile used."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    n: int
    residual_sd: float
    x_mean: float
    sxx: float
    t: float
    confidence: float

    def predict(self, x: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fitted value at ``x`` and its prediction interval (where one new observation should fall)."""
        x = np.asarray(x, dtype=float)
        fitted = self.intercept + self.slope * x
        half = self.t * self.residual_sd * np.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        return fitted, fitted - half, fitted + half

    @property
    def rising(self) -> bool:
        """True when the whole confidence interval of the slope is above zero."""
        return self.slope_low > 0


def fit_line(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> LineFit:
    """Least-squares line through (x, y); needs three points or more with distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise BadInputError("a trend needs two series of the same length")
    if len(x) < 3 or np.ptp(x) == 0:
        raise BadInputError(f"a trend needs at least 3 points at different times, got {len(x)}")
    x_mean = float(x.mean())
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * x_mean)
    residuals = y - (intercept + slope * x)
    dof = len(x) - 2
    residual_sd = float(np.sqrt((residuals ** 2).sum() / dof))
    t = float(stats.t.ppf(0.5 + confidence / 2, dof))
    half = t * residual_sd / np.sqrt(sxx)
    return LineFit(slope, intercept, slope - half, slope + half, len(x), residual_sd, x_mean, sxx, t, confidence)
