"""Population stability index: the symmetric KL divergence between binned shares.

``sum((q - p) * ln(q / p))`` over reference-quantile bins (numeric) or categories; a share of zero
counts as 0.0001 so a bin empty on one side adds a large but finite term. The usual reading: below
0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one. Use when a team already reports PSI,
or for live data kept as per-bin counts.
"""

from __future__ import annotations

import numpy as np

from opscore.monitoring.distributions import Counts
from opscore.monitoring.stattests.registry import CATEGORICAL, NUMERIC, StatTest, register
from opscore.monitoring.thresholds import DistanceThreshold, Outcome

EMPTY_SHARE = 1e-4


def psi_on_counts(counts: Counts) -> Outcome:
    p, q = (np.where(share == 0, EMPTY_SHARE, share) for share in counts.shares())
    return Outcome(float(np.sum((q - p) * np.log(q / p))))


register(
    StatTest(
        name="psi",
        kinds=frozenset({NUMERIC, CATEGORICAL}),
        default_threshold=DistanceThreshold(0.1),
        on_counts=psi_on_counts,
    )
)
