import numpy as np
import pytest
from scipy import stats

from opscore.monitoring.distributions import Counts, Samples, bin_counts
from opscore.monitoring.stattests import get_test
from opscore.monitoring.stattests.ks import error_bound, ks_on_counts

KS = get_test("ks")


@pytest.mark.parametrize(("n", "m"), [(40, 70), (1000, 700), (100_000, 90_000)])
def test_raw_statistic_and_p_value_match_scipy_on_the_finite_values(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    reference, current = rng.normal(size=n), rng.normal(0.05, 1.1, size=m)
    reference[:3] = [np.nan, np.inf, -np.inf]

    outcome = KS.run(Samples.from_values(reference, current), bins=10)

    expected = stats.ks_2samp(reference[3:], current)
    assert outcome.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert outcome.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def _edges(kind: str, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    low, high = min(reference.min(), current.min()), max(reference.max(), current.max())
    if kind == "uniform":
        return np.linspace(low, high, 101)
    return Samples.from_values(reference, current).quantile_edges(20)


@pytest.mark.parametrize("binning", ["quantile", "uniform"])
@pytest.mark.parametrize("shift", [-0.5, 0.0, 0.05, 0.5])
def test_binned_statistic_falls_short_of_the_raw_one_within_the_stated_bound(binning: str, shift: float) -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=100_000), rng.normal(shift, 1.2, size=100_000)
    edges = _edges(binning, reference, current)
    counts = Counts(bin_counts(reference, edges), bin_counts(current, edges), edges=edges)

    raw = stats.ks_2samp(reference, current).statistic
    binned = ks_on_counts(counts).statistic

    assert 0 <= raw - binned <= error_bound(counts)
    if binning == "uniform":
        assert error_bound(counts) < 0.05  # 100 bins: the bound says something


def test_binned_p_value_is_smirnovs_asymptotic_one_for_the_binned_statistic() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=100_000), rng.normal(0.01, 1, size=80_000)
    samples = Samples.from_values(reference, current)
    counts = samples.binned(200)

    outcome = ks_on_counts(counts)

    expected = stats.kstwo.sf(outcome.statistic, round(100_000 * 80_000 / 180_000))
    assert outcome.p_value == pytest.approx(expected, abs=1e-12)
    assert outcome.p_value == pytest.approx(stats.ks_2samp(reference, current).pvalue, abs=0.05)


def test_the_bound_is_reached_when_one_side_moves_inside_a_bin_before_the_other() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    reference = np.full(100, 0.1)  # all of it early in bin 0
    current = np.r_[np.full(30, 0.9), np.full(70, 1.5)]  # 30 % late in bin 0
    counts = Counts(bin_counts(reference, edges), bin_counts(current, edges), edges=edges)

    raw = stats.ks_2samp(reference, current).statistic
    binned = ks_on_counts(counts).statistic

    assert (raw, binned) == pytest.approx((1.0, 0.7))
    assert raw - binned == pytest.approx(error_bound(counts))
