"""A/B statistics against scipy and statsmodels, and by simulation: error rates, power, peeking, SRM."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from opscore.rollout import ab_statistics as ab


def test_welch_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 800), rng.normal(10.3, 3, 650)
    got = ab.welch_test(ab.Summary.of(a), ab.Summary.of(b))
    t = stats.ttest_ind(b, a, equal_var=False)
    assert got.p_value == pytest.approx(t.pvalue, rel=1e-9)
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(usevar="unequal")
    assert (got.ci_low, got.ci_high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    assert got.difference == pytest.approx(b.mean() - a.mean())


def test_two_proportion_z_matches_statsmodels():
    got = ab.proportion_test(2880, 3200, 2944, 3200)
    z, p = proportions_ztest([2944, 2880], [3200, 3200])
    assert got.p_value == pytest.approx(p, rel=1e-9)
    assert got.difference == pytest.approx(2944 / 3200 - 2880 / 3200)
    se = math.sqrt(0.9 * 0.1 / 3200 + 0.92 * 0.08 / 3200)
    assert got.ci_low == pytest.approx(0.02 - 1.959963984540054 * se, rel=1e-9)


def test_srm_matches_scipy_chisquare_and_flags_5000_against_5600():
    got = ab.sample_ratio_mismatch({"a": 5000, "b": 5600}, {"a": 50, "b": 50})
    assert got.p_value == pytest.approx(stats.chisquare([5000, 5600]).pvalue, rel=1e-9)
    assert got.flagged and got.p_value < 0.001
    fine = ab.sample_ratio_mismatch({"a": 5000, "b": 5090}, {"a": 1, "b": 1})
    assert not fine.flagged
    skewed = ab.sample_ratio_mismatch({"a": 9000, "b": 1000}, {"a": 0.9, "b": 0.1})
    assert not skewed.flagged  # the configured 90/10 split, met


def test_holm_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2, math.nan]
    got = ab.holm(p)
    expected = multipletests(p[:4], method="holm")[1]
    assert got[:4] == pytest.approx(list(expected), rel=1e-12) and math.isnan(got[4])


def test_sample_size_for_090_to_092_is_about_3200():
    n = ab.sample_size_proportions(0.90, 0.02)
    assert 3150 <= n <= 3250  # ANCHORS: about 3,205
    assert ab.sample_size_means(sd=10, minimum_effect=1) == pytest.approx(1570, abs=2)


def test_delta_method_lift_covers_the_true_lift():
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(400):
        a, b = rng.exponential(100, 500), rng.exponential(110, 500)
        got = ab.welch_test(ab.Summary.of(a), ab.Summary.of(b))
        covered += got.lift_ci_low <= 0.10 <= got.lift_ci_high
    assert 0.92 <= covered / 400 <= 0.98


def test_bootstrap_p95_difference_finds_a_slower_tail_and_not_a_same_one():
    rng = np.random.default_rng(4)
    fast, slow = rng.lognormal(3, 0.5, 3000), rng.lognormal(3, 0.5, 3000) * 1.3
    got = ab.bootstrap_quantile_difference(fast, slow, resamples=500)
    true_diff = float(np.exp(3 + 0.5 * stats.norm.ppf(0.95))) * 0.3
    assert got.ci_low <= true_diff <= got.ci_high and got.ci_low > 0 and got.p_value < 0.05
    same = ab.bootstrap_quantile_difference(fast, rng.lognormal(3, 0.5, 3000), resamples=500)
    assert same.ci_low <= 0 <= same.ci_high


def _simulate_proportions(p_a: float, p_b: float, n: int, runs: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.binomial(n, p_a, runs), rng.binomial(n, p_b, runs)
    return np.array([ab.proportion_test(int(x), n, int(y), n).p_value for x, y in zip(a, b, strict=True)])


def test_an_aa_test_at_a_fixed_horizon_is_significant_in_about_5_percent():
    p = _simulate_proportions(0.90, 0.90, 3205, 1000, seed=11)
    assert 0.04 <= (p < 0.05).mean() <= 0.06


def test_a_two_point_difference_is_found_at_80_percent_power():
    n = ab.sample_size_proportions(0.90, 0.02)
    p = _simulate_proportions(0.90, 0.92, n, 1000, seed=12)
    assert (p < 0.05).mean() >= 0.77


def test_peeking_every_100_samples_inflates_the_fixed_test_but_not_the_sequential_one():
    rng = np.random.default_rng(13)
    runs, per_arm, step = 1000, 10_000, 100
    n = np.arange(step, per_arm + 1, step, dtype=float)
    # Successes at each look, every run at once: cumulative sums of the looks' binomial increments.
    ca = rng.binomial(step, 0.9, (runs, n.size)).cumsum(axis=1)
    cb = rng.binomial(step, 0.9, (runs, n.size)).cumsum(axis=1)
    pa, pb = ca / n, cb / n
    pooled = (ca + cb) / (2 * n)
    z_fixed = np.abs(pb - pa) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    fixed = (2 * stats.norm.sf(z_fixed) < 0.05).any(axis=1)
    # The sequence on the same looks: per-observation sd of the difference over N = 2n observations.
    se = np.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
    half = ab.sequential_half_width(se * np.sqrt(2 * n), 2 * n)
    sequential = (np.abs(pb - pa) > half).any(axis=1)
    assert fixed.mean() > 0.2  # ANCHORS: 38 % when looking every 100 samples
    assert sequential.mean() <= 0.05
    # always_valid agrees with the vectorised sequence at a look.
    test = ab.proportion_test(int(ca[0, -1]), per_arm, int(cb[0, -1]), per_arm)
    assert ab.always_valid(test, per_arm, per_arm).ci_high - test.difference == pytest.approx(half[0, -1], rel=1e-9)


def test_the_sequential_interval_is_wider_and_contains_the_fixed_one():
    fixed = ab.proportion_test(2880, 3200, 2950, 3200)
    seq = ab.always_valid(fixed, 3200, 3200)
    assert seq.ci_low < fixed.ci_low and seq.ci_high > fixed.ci_high
    assert seq.p_value >= fixed.p_value
    assert seq.lift_ci_low < fixed.lift_ci_low


def test_time_to_sample():
    assert ab.seconds_to_sample(3205, {"a": 3000, "b": 3100}, {"a": 1.0, "b": 0.5}) == 210
    assert ab.seconds_to_sample(3205, {"a": 4000, "b": 4000}, {"a": 1.0, "b": 1.0}) == 0
    assert ab.seconds_to_sample(3205, {"a": 10, "b": 4000}, {"a": 0.0, "b": 1.0}) is None
