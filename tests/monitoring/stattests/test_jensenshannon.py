import numpy as np
import pytest
from scipy.spatial import distance

from opscore.monitoring.distributions import Counts, Samples, bin_counts
from opscore.monitoring.stattests import get_test

JENSENSHANNON = get_test("jensenshannon")


def test_matches_scipy_in_natural_log_on_category_counts() -> None:
    reference, current = np.array([500, 300, 200, 0]), np.array([450, 250, 250, 50])

    outcome = JENSENSHANNON.run(Counts(reference, current, labels=("a", "b", "c", "d")), bins=10)

    assert outcome.statistic == pytest.approx(distance.jensenshannon(reference / 1000, current / 1000), abs=1e-9)
    assert outcome.p_value is None


def test_disjoint_distributions_are_at_the_natural_log_maximum() -> None:
    outcome = JENSENSHANNON.run(Counts(np.array([10, 0]), np.array([0, 10]), labels=("a", "b")), bins=10)
    assert outcome.statistic == pytest.approx(np.sqrt(np.log(2)), abs=1e-12)


def test_numeric_samples_are_compared_over_reference_quantile_bins() -> None:
    rng = np.random.default_rng(4)
    reference, current = rng.normal(size=5000), rng.normal(0.3, 1, size=4000)
    samples = Samples.from_values(reference, current)
    edges = samples.quantile_edges(10)

    outcome = JENSENSHANNON.run(samples, bins=10)

    p, q = bin_counts(reference, edges), bin_counts(current, edges)
    assert outcome.statistic == pytest.approx(distance.jensenshannon(p / p.sum(), q / q.sum()), abs=1e-9)
    assert np.allclose(p, 500, atol=1)  # deciles of the reference
