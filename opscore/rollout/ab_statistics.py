"""The statistics behind an A/B verdict, each as an experimentation platform computes it.

- Sample ratio mismatch: chi-square of observed counts against the configured weights; below
  p = 0.001 (GrowthBook's line) the assignment itself is broken and no verdict is given.
- Means (latency, score): Welch's t-test on the difference with its CI, and the relative lift with a
  delta-method CI (the ratio of two means is not normal; its log-free linearisation is, to first order).
- p95 latency: a percentile bootstrap CI of the difference of the arms' p95s (Mann-Whitney tests a
  shift of the whole distribution, not the tail).
- Proportions (accuracy on labelled traffic): two-proportion z-test (pooled for the p-value,
  unpooled for the CI).
- Peeking: an asymptotic confidence sequence (Waudby-Smith et al., as GrowthBook's sequential mode),
  valid however often one looks; its price is a wider interval early on.
- Several metrics: Holm's step-down correction; guardrails are judged apart.
- Power: the sample per arm to find a stated minimum effect, and the time still needed at the
  current rate.

Everything works on sufficient statistics (counts, means, variances) so an analysis over millions of
logged rows never holds them in memory twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SRM_ALPHA = 0.001
# GrowthBook's default sequential tuning: the interval is tightest around this many observations.
SEQUENTIAL_TUNING = 5_000


@dataclass(frozen=True)
class SampleRatio:
    counts: dict[str, int]
    expected: dict[str, float]
    statistic: float
    p_value: float
    flagged: bool


def sample_ratio_mismatch(counts: Mapping[str, int], weights: Mapping[str, float],
                          alpha: float = SRM_ALPHA) -> SampleRatio:
    """Chi-square goodness of fit of the arms' counts to their configured weights."""
    names = list(weights)
    observed = np.array([float(counts.get(n, 0)) for n in names])
    total_weight = float(sum(weights[n] for n in names))
    if total_weight <= 0:
        raise ValueError("the weights must add up to more than 0")
    expected = observed.sum() * np.array([weights[n] / total_weight for n in names])
    if observed.sum() == 0 or len(names) < 2:
        return SampleRatio({n: int(counts.get(n, 0)) for n in names}, dict(zip(names, expected.tolist(), strict=True)),
                           0.0, 1.0, False)
    statistic, p_value = stats.chisquare(observed, expected)
    return SampleRatio({n: int(counts.get(n, 0)) for n in names}, dict(zip(names, expected.tolist(), strict=True)),
                       float(statistic), float(p_value), bool(p_value < alpha))


@dataclass(frozen=True)
class Summary:
    """An arm's sufficient statistics for a mean: count, mean, sample variance (ddof 1)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Summary:
        array = np.asarray(values, dtype=float)
        return cls(int(array.size), float(array.mean()) if array.size else math.nan,
                   float(array.var(ddof=1)) if array.size > 1 else math.nan)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control: the difference (treatment - control) with its CI and p-value."""

    control: float
    treatment: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float
    lift_ci_low: float
    lift_ci_high: float

    def significant(self, alpha: float = 0.05) -> bool:
        return bool(self.p_value < alpha)


def _nan_comparison(control: float, treatment: float) -> Comparison:
    return Comparison(control, treatment, treatment - control, math.nan, math.nan, math.nan, math.nan,
                      math.nan, math.nan)


def _lift(control_mean: float, treatment_mean: float, var_control_mean: float, var_treatment_mean: float,
          z: float) -> tuple[float, float, float]:
    """Relative lift t/c - 1 with its delta-method CI: Var(t/c) ≈ Var(t)/c² + t²Var(c)/c⁴."""
    if control_mean == 0 or not math.isfinite(control_mean):
        return math.nan, math.nan, math.nan
    lift = treatment_mean / control_mean - 1
    se = math.sqrt(var_treatment_mean / control_mean ** 2
                   + treatment_mean ** 2 * var_control_mean / control_mean ** 4)
    return lift, lift - z * se, lift + z * se


def welch_test(control: Summary, treatment: Summary, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test on the difference of means, with the relative lift."""
    if control.n < 2 or treatment.n < 2:
        return _nan_comparison(control.mean, treatment.mean)
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    diff = treatment.mean - control.mean
    se = math.sqrt(vc + vt)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return Comparison(control.mean, treatment.mean, diff, diff, diff, p, *_lift(control.mean, treatment.mean,
                                                                                    0.0, 0.0, 0.0))
    dof = (vc + vt) ** 2 / (vc ** 2 / (control.n - 1) + vt ** 2 / (treatment.n - 1))
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), dof))
    q = float(stats.t.ppf(1 - alpha / 2, dof))
    lift, low, high = _lift(control.mean, treatment.mean, vc, vt, q)
    return Comparison(control.mean, treatment.mean, diff, diff - q * se, diff + q * se, p, lift, low, high)


def proportion_test(control_successes: int, control_n: int, treatment_successes: int, treatment_n: int,
                    alpha: float = 0.05) -> Comparison:
    """Two-proportion z-test: pooled variance for the p-value, unpooled for the CI of the difference."""
    if control_n == 0 or treatment_n == 0:
        return _nan_comparison(math.nan, math.nan)
    pc, pt = control_successes / control_n, treatment_successes / treatment_n
    pooled = (control_successes + treatment_successes) / (control_n + treatment_n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / treatment_n))
    diff = pt - pc
    p = (1.0 if diff == 0 else 0.0) if se_pooled == 0 else float(2 * stats.norm.sf(abs(diff) / se_pooled))
    vc, vt = pc * (1 - pc) / control_n, pt * (1 - pt) / treatment_n
    z = float(stats.norm.ppf(1 - alpha / 2))
    se = math.sqrt(vc + vt)
    lift, low, high = _lift(pc, pt, vc, vt, z)
    return Comparison(pc, pt, diff, diff - z * se, diff + z * se, p, lift, low, high)


def bootstrap_quantile_difference(control: np.ndarray, treatment: np.ndarray, q: float = 0.95,
                                  resamples: int = 2_000, alpha: float = 0.05, seed: int = 0,
                                  max_rows: int = 20_000) -> Comparison:
    """Percentile bootstrap CI of quantile(treatment) - quantile(control); p from the bootstrap's sign share.

    Arms larger than ``max_rows`` are subsampled once (seeded) first: the bootstrap's error is
    dominated by the resample count, not by rows beyond tens of thousands.
    """
    rng = np.random.default_rng(seed)
    c = np.asarray(control, dtype=float)
    t = np.asarray(treatment, dtype=float)
    c, t = c[np.isfinite(c)], t[np.isfinite(t)]
    if c.size < 20 or t.size < 20:
        return _nan_comparison(float(np.quantile(c, q)) if c.size else math.nan,
                               float(np.quantile(t, q)) if t.size else math.nan)
    c = rng.choice(c, max_rows, replace=False) if c.size > max_rows else c
    t = rng.choice(t, max_rows, replace=False) if t.size > max_rows else t
    qc, qt = float(np.quantile(c, q)), float(np.quantile(t, q))
    diffs = np.empty(resamples)
    for i in range(resamples):
        diffs[i] = np.quantile(rng.choice(t, t.size), q) - np.quantile(rng.choice(c, c.size), q)
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    # Two-sided bootstrap p-value: twice the smaller share of resampled differences on either side of 0.
    p = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    spread = float(np.var(diffs, ddof=1))
    return Comparison(qc, qt, qt - qc, float(low), float(high), p,
                      *(_lift(qc, qt, 0.0, spread, float(stats.norm.ppf(1 - alpha / 2)))
                        if qc else (math.nan, math.nan, math.nan)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and counts as no test)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def sequential_half_width(per_obs_sd, n, alpha: float = 0.05, tuning: int = SEQUENTIAL_TUNING):  # type: ignore[no-untyped-def]
    """Half-width of the asymptotic confidence sequence at n observations (Waudby-Smith et al., eq. 2.4).

    Takes numbers or numpy arrays (a simulation evaluates every look at once).
    """
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    n = np.asarray(n, dtype=float)
    width = np.asarray(per_obs_sd, dtype=float) * np.sqrt(2 * (n * rho2 + 1) / (n ** 2 * rho2)
                                                          * np.log(np.sqrt(n * rho2 + 1) / alpha))
    return float(width) if width.ndim == 0 else width


def always_valid(comparison: Comparison, control_n: int, treatment_n: int, alpha: float = 0.05,
                 tuning: int = SEQUENTIAL_TUNING) -> Comparison:
    """The same comparison with an always-valid interval and p-value, safe under continuous peeking.

    The difference's variance V over N = n_c + n_t observations behaves like one observation's
    variance N·V, which is what the sequence is built on (as GrowthBook does). The p-value is the
    smallest alpha at which the sequence excludes 0.
    """
    n = control_n + treatment_n
    if n < 2 or not math.isfinite(comparison.ci_high) or not math.isfinite(comparison.ci_low):
        return comparison
    z = float(stats.norm.ppf(1 - alpha / 2))
    se = (comparison.ci_high - comparison.ci_low) / (2 * z)
    if se == 0:
        return comparison
    sd = se * math.sqrt(n)
    half = sequential_half_width(sd, n, alpha, tuning)
    diff = abs(comparison.difference)

    def excludes(a: float) -> bool:
        return sequential_half_width(sd, n, a, tuning) < diff

    if not excludes(1 - 1e-12):
        p = 1.0
    else:
        low_a, high_a = 1e-300, 1 - 1e-12
        if excludes(low_a):
            p = low_a
        else:
            for _ in range(100):
                mid = math.sqrt(low_a * high_a) if high_a / low_a > 10 else (low_a + high_a) / 2
                if excludes(mid):
                    high_a = mid
                else:
                    low_a = mid
            p = high_a
    # The lift's interval widens by the same factor as the difference's: the sequence's multiplier replaces z.
    lift_half = (comparison.lift_ci_high - comparison.lift_ci_low) / 2 / z * (half / se)
    return Comparison(comparison.control, comparison.treatment, comparison.difference,
                      comparison.difference - half, comparison.difference + half, float(min(1.0, p)),
                      comparison.relative_lift, comparison.relative_lift - lift_half,
                      comparison.relative_lift + lift_half)


def sample_size_proportions(baseline: float, minimum_effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Labelled rows per arm to find baseline → baseline + minimum_effect (two-sided, normal approximation)."""
    p1, p2 = baseline, baseline + minimum_effect
    if not (0 < p1 < 1 and 0 < p2 < 1) or minimum_effect == 0:
        raise ValueError("baseline and baseline + minimum_effect must lie strictly between 0 and 1, apart")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pbar = (p1 + p2) / 2
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    return int(math.ceil(n))


def sample_size_means(sd: float, minimum_effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Rows per arm to find a difference of means of ``minimum_effect`` given each arm's standard deviation."""
    if sd <= 0 or minimum_effect == 0:
        raise ValueError("sd must be positive and minimum_effect not 0")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return int(math.ceil(2 * (za + zb) ** 2 * sd ** 2 / minimum_effect ** 2))


def seconds_to_sample(needed_per_arm: int, have: Mapping[str, int], rate_per_second: Mapping[str, float]) -> float | None:
    """Seconds until the slowest arm reaches ``needed_per_arm`` at its current rate (0 when reached, None if stalled)."""
    waits = []
    for arm, n in have.items():
        missing = needed_per_arm - n
        if missing <= 0:
            waits.append(0.0)
            continue
        rate = rate_per_second.get(arm, 0.0)
        if rate <= 0:
            return None
        waits.append(missing / rate)
    return max(waits) if waits else None
