import numpy as np
import pytest

from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests import get_test

PSI = get_test("psi")


def test_known_value() -> None:
    outcome = PSI.run(Counts(np.array([50, 50]), np.array([25, 75]), labels=("a", "b")), bins=10)
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    assert outcome.statistic == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5), abs=1e-12)


def test_a_bin_empty_on_one_side_counts_as_a_tiny_share_not_infinity() -> None:
    outcome = PSI.run(Counts(np.array([50, 50]), np.array([100, 0]), labels=("a", "b")), bins=10)
    expected = 0.5 * np.log(2) + (1e-4 - 0.5) * np.log(1e-4 / 0.5)
    assert outcome.statistic == pytest.approx(expected, abs=1e-12)


def test_same_shares_are_zero() -> None:
    assert PSI.run(Counts(np.array([10, 30, 60]), np.array([1, 3, 6]), labels=("a", "b", "c")), bins=10).statistic == 0.0
