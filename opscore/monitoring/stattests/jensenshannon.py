"""Jensen-Shannon distance: how far apart two distributions are, symmetric and bounded.

The square root of the Jensen-Shannon divergence in natural log (as Evidently: scipy's default
base), between 0 and sqrt(ln 2) ~ 0.83. Use for categorical columns on large data (Evidently's
default above 1,000 reference rows); numeric columns are compared over reference-quantile bins.
"""

from __future__ import annotations

from scipy.spatial import distance

from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests.registry import CATEGORICAL, NUMERIC, StatTest, register
from opscore.monitoring.thresholds import DistanceThreshold, Outcome


def jensenshannon_on_counts(counts: Counts) -> Outcome:
    p, q = counts.shares()
    return Outcome(float(distance.jensenshannon(p, q)))


register(
    StatTest(
        name="jensenshannon",
        kinds=frozenset({NUMERIC, CATEGORICAL}),
        default_threshold=DistanceThreshold(0.1),
        on_counts=jensenshannon_on_counts,
    )
)
