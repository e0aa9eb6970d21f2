import numpy as np
import pytest
from scipy import stats

from opscore.monitoring.distributions import Counts, Samples, bin_counts
from opscore.monitoring.stattests import get_test
from opscore.monitoring.stattests.wasserstein import error_bound, wasserstein_on_counts, wasserstein_sorted

WASSERSTEIN = get_test("wasserstein")


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 5), (7, 3), (6, 4), (4, 6), (100, 100), (1000, 337), (10, 10_000), (100_000, 99_999)])
def test_distance_on_sorted_samples_matches_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 31 + m)
    u, v = np.sort(rng.normal(size=n)), np.sort(rng.normal(0.3, 2.0, size=m))
    assert wasserstein_sorted(u, v) == pytest.approx(stats.wasserstein_distance(u, v), abs=1e-9)


def test_distance_with_ties_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    u = np.sort(rng.integers(0, 5, 1000).astype(float))
    v = np.sort(rng.integers(0, 7, 777).astype(float))
    assert wasserstein_sorted(u, v) == pytest.approx(stats.wasserstein_distance(u, v), abs=1e-9)


def test_normed_distance_divides_scipys_by_the_reference_std_without_missing_values() -> None:
    rng = np.random.default_rng(11)
    reference, current = rng.normal(5, 3, size=20_000), rng.normal(5.6, 3, size=15_000)
    current[[0, 9]] = [np.nan, -np.inf]

    outcome = WASSERSTEIN.run(Samples.from_values(reference, current), bins=10)

    finite = current[np.isfinite(current)]
    assert outcome.statistic == pytest.approx(stats.wasserstein_distance(reference, finite) / np.std(reference), abs=1e-9)
    assert outcome.p_value is None


def test_constant_reference_is_normed_by_the_floor_not_zero() -> None:
    outcome = WASSERSTEIN.run(Samples.from_values(np.zeros(50), np.full(50, 0.01)), bins=10)
    assert outcome.statistic == pytest.approx(10.0)


@pytest.mark.parametrize("binning", ["quantile", "uniform"])
@pytest.mark.parametrize("shift", [-0.5, 0.0, 0.1, 0.5])
def test_binned_distance_is_within_its_stated_bound_of_the_raw_one(binning: str, shift: float) -> None:
    rng = np.random.default_rng(17)
    reference, current = rng.normal(size=100_000), rng.normal(shift, 1.3, size=100_000)
    samples = Samples.from_values(reference, current)
    if binning == "uniform":
        edges = np.linspace(min(samples.reference[0], samples.current[0]), max(samples.reference[-1], samples.current[-1]), 201)
    else:
        edges = samples.quantile_edges(20)
    counts = Counts(bin_counts(reference, edges), bin_counts(current, edges), edges=edges, reference_std=float(np.std(reference)))

    raw = stats.wasserstein_distance(reference, current) / np.std(reference)
    binned = wasserstein_on_counts(counts).statistic

    assert abs(raw - binned) <= error_bound(counts)
    if binning == "uniform":  # equal bins: the bound is one bin width, in reference std
        assert error_bound(counts) == pytest.approx((edges[1] - edges[0]) / np.std(reference))


def test_binned_distance_without_a_known_std_estimates_it_from_the_bins() -> None:
    rng = np.random.default_rng(2)
    reference, current = rng.normal(0, 2, size=100_000), rng.normal(0.4, 2, size=100_000)
    edges = np.linspace(min(reference.min(), current.min()), max(reference.max(), current.max()), 201)
    known = Counts(bin_counts(reference, edges), bin_counts(current, edges), edges=edges, reference_std=float(np.std(reference)))
    estimated = Counts(known.reference, known.current, edges=edges)

    assert wasserstein_on_counts(estimated).statistic == pytest.approx(wasserstein_on_counts(known).statistic, rel=0.01)


def test_the_bound_is_reached_when_the_sides_sit_at_opposite_ends_of_one_bin() -> None:
    edges = np.array([0.0, 1.0, 3.0])
    reference, current = np.r_[np.full(50, 0.0), np.full(50, 2.0)], np.r_[np.full(50, 1.0), np.full(50, 2.0)]
    counts = Counts(bin_counts(reference, edges), bin_counts(current, edges), edges=edges, reference_std=1.0)

    assert stats.wasserstein_distance(reference, current) == pytest.approx(0.5)
    assert wasserstein_on_counts(counts).statistic == pytest.approx(0.0)
    # bin 0 (width 1) is where the mass moved: half of it, by the whole width; bin 1 adds width 2 x its share.
    assert error_bound(counts) == pytest.approx(1 * (0.5 + 0.5) / 2 + 2 * (0.5 + 0.5) / 2)
