"""Kolmogorov-Smirnov: the largest gap between the two empirical CDFs, with its p-value.

Use for numeric columns on small data (Evidently's default up to 1,000 reference rows): it sees any
difference in shape, but at large n its p-value flags differences too small to matter.

Binned form: the CDFs are known exactly at the bin edges only, so the binned statistic is a lower
bound of the raw one. Inside bin i the gap can grow past its value at an edge only by the mass one
side moves there while the other holds still, so ``0 <= D_raw - D_binned <= max_i min(p_i, q_i)``
(``error_bound``): within the largest bin share. Its p-value is Smirnov's asymptotic one for the
binned statistic.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from opscore.monitoring.distributions import Counts, Samples
from opscore.monitoring.stattests.registry import NUMERIC, StatTest, register
from opscore.monitoring.thresholds import Outcome, PValueThreshold


def ks_on_samples(samples: Samples) -> Outcome:
    result = stats.ks_2samp(samples.reference, samples.current)
    return Outcome(float(result.statistic), float(result.pvalue))


def ks_on_counts(counts: Counts) -> Outcome:
    p, q = counts.shares()
    statistic = float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))
    n, m = sorted((counts.n_reference, counts.n_current), reverse=True)
    p_value = float(np.clip(stats.kstwo.sf(statistic, np.round(n * m / (n + m))), 0, 1))
    return Outcome(statistic, p_value)


def error_bound(counts: Counts) -> float:
    """How much the binned statistic can fall short of the raw one."""
    p, q = counts.shares()
    return float(np.max(np.minimum(p, q)))


register(
    StatTest(
        name="ks",
        kinds=frozenset({NUMERIC}),
        default_threshold=PValueThreshold(0.05),
        on_counts=ks_on_counts,
        on_samples=ks_on_samples,
    )
)
