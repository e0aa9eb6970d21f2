"""When a statistic means drift: thresholds are small objects, not loose floats.

A p-value threshold says "drift when p < value" and is the only kind a multiple-testing correction
lowers; a distance threshold says "drift when statistic >= value" and is never corrected, because a
distance does not grow more likely to cross a fixed line as more columns are tested.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from opscore.exceptions import BadInputError


class Outcome(NamedTuple):
    """What a statistical test returns: its statistic and, for hypothesis tests, the p-value."""

    statistic: float
    p_value: float | None = None


@dataclass(frozen=True)
class PValueThreshold:
    """Drift when the test's p-value is below ``value`` (after any correction)."""

    value: float = 0.05
    uses_p_value = True

    def __post_init__(self) -> None:
        if not 0 < self.value < 1:
            raise BadInputError(f"a p-value threshold lies strictly between 0 and 1, got {self.value}")

    def drifted(self, outcome: Outcome) -> bool:
        return outcome.p_value is not None and outcome.p_value < self.value

    def scaled(self, factor: float) -> PValueThreshold:
        """The same threshold lowered by a multiple-testing correction factor in (0, 1]."""
        return replace(self, value=self.value * factor)


@dataclass(frozen=True)
class DistanceThreshold:
    """Drift when the test's statistic (a distance or divergence) is at least ``value``."""

    value: float = 0.1
    uses_p_value = False

    def __post_init__(self) -> None:
        if not self.value > 0:
            raise BadInputError(f"a distance threshold must be positive, got {self.value}")

    def drifted(self, outcome: Outcome) -> bool:
        return outcome.statistic >= self.value


Threshold = PValueThreshold | DistanceThreshold
