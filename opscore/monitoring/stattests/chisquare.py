"""Chi-square test of homogeneity: do both samples share one category distribution?

Pearson's statistic on the 2 x k table of reference and current counts, without Yates' correction,
and its p-value. Use for categorical columns with more than two categories on small data
(Evidently's default up to 1,000 reference rows). A category seen on one side only is part of the
table, so a new category in current weighs in instead of dividing by zero.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests.registry import CATEGORICAL, StatTest, register
from opscore.monitoring.thresholds import Outcome, PValueThreshold


def chisquare_on_counts(counts: Counts) -> Outcome:
    table = np.vstack([counts.reference, counts.current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return Outcome(0.0, 1.0)  # one category on both sides: nothing can differ
    result = stats.chi2_contingency(table, correction=False)
    return Outcome(float(result.statistic), float(result.pvalue))


register(
    StatTest(
        name="chisquare",
        kinds=frozenset({CATEGORICAL}),
        default_threshold=PValueThreshold(0.05),
        on_counts=chisquare_on_counts,
    )
)
