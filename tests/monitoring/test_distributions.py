import numpy as np
import pytest

from opscore.monitoring.distributions import Counts, Samples, bin_counts


def test_bins_are_right_closed_and_the_outer_bins_take_everything_beyond_the_edges() -> None:
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    values = np.array([-5.0, 0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0])
    assert bin_counts(values, edges).tolist() == [3, 2, 3]
    assert bin_counts(np.sort(values), edges, presorted=True).tolist() == [3, 2, 3]


def test_sorted_and_unsorted_counting_agree_with_ties() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 20, 10_000).astype(float)
    edges = np.array([0.0, 3.0, 3.5, 10.0, 19.0])
    assert bin_counts(np.sort(values), edges, presorted=True).tolist() == bin_counts(values, edges).tolist()


def test_samples_keep_the_finite_values_sorted() -> None:
    samples = Samples.from_values(np.array([3.0, np.nan, -np.inf, 1.0, np.inf, 2.0]), np.array([np.nan]))
    assert samples.reference.tolist() == [1.0, 2.0, 3.0]
    assert samples.current.size == 0


def test_quantile_bins_hold_equal_reference_shares_and_span_both_samples() -> None:
    rng = np.random.default_rng(2)
    samples = Samples.from_values(rng.normal(size=10_000), rng.normal(0, 3, size=10_000))
    counts = samples.binned(10)
    assert (counts.edges[0], counts.edges[-1]) == (samples.current[0], samples.current[-1])
    assert counts.current.sum() == 10_000
    assert np.allclose(counts.reference, 1000, atol=1)
    assert counts.reference_std == pytest.approx(np.std(samples.reference))


def test_a_reference_with_heavy_ties_gets_fewer_bins_not_empty_ones() -> None:
    samples = Samples.from_values(np.repeat([1.0, 2.0, 3.0], 100), np.array([1.0, 2.5, 7.0]))
    counts = samples.binned(10)
    assert counts.reference.sum() == 300 and counts.current.sum() == 3
    assert counts.reference.size < 10


def test_counts_refuse_mismatched_bins() -> None:
    with pytest.raises(ValueError, match="same bins"):
        Counts(np.array([1, 2]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="edges"):
        Counts(np.array([1, 2]), np.array([1, 2]), edges=np.array([0.0, 1.0]))
