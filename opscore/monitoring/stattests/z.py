"""Two-proportion Z-test: has the share of one of two categories changed?

The pooled two-sample z statistic (reported as |z|) and its two-sided normal p-value; for two
categories it is the chi-square test's square root. Use for binary categorical columns on small
data (Evidently's default up to 1,000 reference rows).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from opscore.exceptions import BadInputError
from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests.registry import CATEGORICAL, StatTest, register
from opscore.monitoring.thresholds import Outcome, PValueThreshold


def z_on_counts(counts: Counts) -> Outcome:
    present = (counts.reference + counts.current) > 0
    if present.sum() > 2:
        raise BadInputError(f"the z test compares two categories; this column has {int(present.sum())}")
    if present.sum() < 2:
        return Outcome(0.0, 1.0)  # one category on both sides: nothing can differ
    ref, cur = counts.reference[present], counts.current[present]
    n_ref, n_cur = ref.sum(), cur.sum()
    pooled = (ref[0] + cur[0]) / (n_ref + n_cur)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    z = abs(ref[0] / n_ref - cur[0] / n_cur) / spread
    return Outcome(float(z), float(2 * stats.norm.sf(z)))


register(
    StatTest(
        name="z",
        kinds=frozenset({CATEGORICAL}),
        default_threshold=PValueThreshold(0.05),
        on_counts=z_on_counts,
    )
)
