import pytest

from opscore.exceptions import BadInputError
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.thresholds import DistanceThreshold, PValueThreshold


@pytest.mark.parametrize(
    ("kind", "reference_values", "categories", "expected"),
    [
        ("numeric", 1000, 0, "ks"),
        ("numeric", 1001, 0, "wasserstein"),
        ("categorical", 1000, 3, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("categorical", 1001, 2, "jensenshannon"),
        ("categorical", 1001, 5, "jensenshannon"),
    ],
)
def test_default_choice_is_evidentlys(kind: str, reference_values: int, categories: int, expected: str) -> None:
    test, threshold = DriftOptions().test_for("x", kind, reference_values, categories)
    assert test.name == expected
    assert threshold == test.default_threshold


def test_an_override_sets_the_test_and_a_threshold_of_its_kind() -> None:
    options = DriftOptions(column_tests={"age": ("psi", 0.2), "income": "ks", "city": ("chisquare", PValueThreshold(0.01))})
    assert [t.name for t in (options.test_for(c, k, 10**6, 3)[0] for c, k in
            [("age", "numeric"), ("income", "numeric"), ("city", "categorical")])] == ["psi", "ks", "chisquare"]
    assert options.test_for("age", "numeric", 10, 0)[1] == DistanceThreshold(0.2)
    assert options.test_for("city", "categorical", 10, 3)[1] == PValueThreshold(0.01)


def test_a_test_for_the_wrong_kind_of_column_is_refused_by_name() -> None:
    options = DriftOptions(column_tests={"city": "wasserstein"})
    with pytest.raises(BadInputError, match="'city' is categorical.*'wasserstein'"):
        options.test_for("city", "categorical", 10, 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"column_tests": {"age": ("kl", 0.1)}}, "unknown drift test 'kl'"),
        ({"column_tests": {"age": ("ks", 1.5)}}, "between 0 and 1"),
        ({"correction": "holm"}, "unknown correction 'holm'"),
        ({"drift_share": 0.0}, "drift_share"),
        ({"bins": 1}, "bins"),
    ],
)
def test_bad_options_fail_when_declared(options: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        DriftOptions(**options)
