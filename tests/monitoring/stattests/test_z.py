import numpy as np
import pytest
from scipy import stats

from opscore.exceptions import BadInputError
from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests import get_test

Z = get_test("z")


@pytest.mark.parametrize(("reference", "current"), [([300, 700], [330, 670]), ([5, 95], [40, 60]), ([0, 50], [3, 47])])
def test_z_squared_and_p_value_equal_the_uncorrected_two_by_two_chi_square(reference: list[int], current: list[int]) -> None:
    outcome = Z.run(Counts(np.array(reference), np.array(current), labels=("no", "yes")), bins=10)

    expected = stats.chi2_contingency(np.array([reference, current]), correction=False)
    assert outcome.statistic**2 == pytest.approx(expected.statistic, abs=1e-9)
    assert outcome.p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_more_than_two_categories_is_the_callers_error() -> None:
    with pytest.raises(BadInputError, match="two categories"):
        Z.run(Counts(np.array([1, 2, 3]), np.array([1, 2, 3]), labels=("a", "b", "c")), bins=10)
