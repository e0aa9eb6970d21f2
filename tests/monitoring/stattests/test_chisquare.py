import numpy as np
import pytest
from scipy import stats

from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests import get_test

CHISQUARE = get_test("chisquare")


def test_matches_scipys_contingency_test_including_a_category_only_current_has() -> None:
    reference = np.array([120, 300, 80, 0])
    current = np.array([100, 310, 60, 25])

    outcome = CHISQUARE.run(Counts(reference, current, labels=("a", "b", "c", "new")), bins=10)

    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    assert outcome.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert outcome.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_two_categories_get_no_yates_correction_either() -> None:
    reference, current = np.array([300, 700]), np.array([340, 660])
    outcome = CHISQUARE.run(Counts(reference, current, labels=("no", "yes")), bins=10)
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    assert (outcome.statistic, outcome.p_value) == pytest.approx((expected.statistic, expected.pvalue), abs=1e-9)


def test_one_category_on_both_sides_is_no_difference() -> None:
    outcome = CHISQUARE.run(Counts(np.array([10, 0]), np.array([4, 0]), labels=("a", "b")), bins=10)
    assert outcome == (0.0, 1.0)
