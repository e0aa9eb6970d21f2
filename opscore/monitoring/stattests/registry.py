"""The stat-test registry: each test registers itself by name with its default threshold.

A test module calls ``register`` once at import; the package imports every module beside this one,
so adding a test is adding one module. A test computes on ``Counts`` (bins or categories, what a
live path keeps) and, when it has an exact form on raw values, on ``Samples`` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opscore.exceptions import BadInputError
from opscore.monitoring.distributions import Counts, Samples
from opscore.monitoring.thresholds import DistanceThreshold, Outcome, PValueThreshold, Threshold

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class StatTest:
    """One registered test: its name, the column kinds it applies to, and how to compute it."""

    name: str
    kinds: frozenset[str]
    default_threshold: Threshold
    on_counts: Callable[[Counts], Outcome]
    on_samples: Callable[[Samples], Outcome] | None = None

    @property
    def uses_p_value(self) -> bool:
        return self.default_threshold.uses_p_value

    def threshold(self, value: float | Threshold | None = None) -> Threshold:
        """The default threshold, or one of the same kind at ``value``."""
        if value is None:
            return self.default_threshold
        if isinstance(value, PValueThreshold | DistanceThreshold):
            if value.uses_p_value != self.uses_p_value:
                kind = "a p-value" if self.uses_p_value else "a distance"
                raise BadInputError(f"test '{self.name}' takes {kind} threshold, got {value!r}")
            return value
        return type(self.default_threshold)(float(value))

    def run(self, data: Samples | Counts, bins: int) -> Outcome:
        """Compute on raw samples when the test has an exact form, else on counts (binning samples)."""
        if isinstance(data, Samples):
            if self.on_samples is not None:
                return self.on_samples(data)
            data = data.binned(bins)
        return self.on_counts(data)


_TESTS: dict[str, StatTest] = {}


def register(test: StatTest) -> StatTest:
    if test.name in _TESTS:
        raise ValueError(f"a stat test named '{test.name}' is already registered")
    _TESTS[test.name] = test
    return test


def get_test(name: str) -> StatTest:
    """The registered test called ``name``; an unknown name is the user's to fix."""
    try:
        return _TESTS[name]
    except KeyError:
        raise BadInputError(f"unknown drift test '{name}'; available: {', '.join(sorted(_TESTS))}") from None


def available_tests() -> list[str]:
    return sorted(_TESTS)
