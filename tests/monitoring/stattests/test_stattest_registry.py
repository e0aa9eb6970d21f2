import pkgutil

import numpy as np
import pytest

from opscore.exceptions import BadInputError
from opscore.monitoring import stattests
from opscore.monitoring.distributions import Samples
from opscore.monitoring.stattests import StatTest, available_tests, get_test, register
from opscore.monitoring.thresholds import DistanceThreshold, PValueThreshold


def test_every_module_in_the_package_registers_the_test_it_is_named_after() -> None:
    modules = {m.name for m in pkgutil.iter_modules(stattests.__path__)} - {"registry"}
    assert modules == set(available_tests()) == {"ks", "wasserstein", "chisquare", "z", "jensenshannon", "psi"}


@pytest.mark.parametrize(
    ("name", "threshold"),
    [
        ("ks", PValueThreshold(0.05)),
        ("chisquare", PValueThreshold(0.05)),
        ("z", PValueThreshold(0.05)),
        ("wasserstein", DistanceThreshold(0.1)),
        ("jensenshannon", DistanceThreshold(0.1)),
        ("psi", DistanceThreshold(0.1)),
    ],
)
def test_default_thresholds_are_evidentlys(name: str, threshold: object) -> None:
    assert get_test(name).default_threshold == threshold


def test_unknown_name_lists_what_there_is() -> None:
    with pytest.raises(BadInputError, match="'kl'.*chisquare, jensenshannon, ks, psi, wasserstein, z"):
        get_test("kl")


def test_a_plain_number_becomes_a_threshold_of_the_tests_kind() -> None:
    assert get_test("psi").threshold(0.2) == DistanceThreshold(0.2)
    assert get_test("ks").threshold(0.01) == PValueThreshold(0.01)
    with pytest.raises(BadInputError, match="p-value"):
        get_test("ks").threshold(DistanceThreshold(0.2))


def test_a_name_registers_once() -> None:
    ks = get_test("ks")
    with pytest.raises(ValueError, match="already registered"):
        register(StatTest("ks", ks.kinds, ks.default_threshold, ks.on_counts))


def test_a_counts_only_test_bins_raw_samples_at_the_requested_count() -> None:
    rng = np.random.default_rng(0)
    samples = Samples.from_values(rng.normal(size=3000), rng.normal(0.2, 1, size=3000))
    psi = get_test("psi")
    assert psi.run(samples, bins=7) == psi.on_counts(samples.binned(7))
    assert psi.run(samples, bins=7) != psi.run(samples, bins=20)
