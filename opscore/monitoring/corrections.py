"""Multiple-testing correction across the columns tested by p-value.

Testing 50 columns at p < 0.05 flags about 2.5 unchanged ones by chance. A correction returns one
factor in (0, 1] that lowers every p-value column's threshold (a column's override keeps its own
level: its threshold is scaled by the same factor):

- ``"bh"`` (Benjamini-Hochberg, the default): with m columns, find the largest k whose k-th smallest
  p/threshold ratio is at most k/m; the factor is k/m (1/m when none qualifies). When nothing
  drifted it guards against any false alarm as well as Bonferroni does (under the global null the
  false discovery rate is the family-wise error rate), yet when several columns really moved it
  keeps the power Bonferroni spends: the expected share of false alarms among flagged columns stays
  at the threshold, which is what ``drift_share`` counts.
- ``"bonferroni"``: factor 1/m; no false alarm anywhere with probability at least 1 - threshold.
- ``"none"``: factor 1, as Evidently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["bh", "bonferroni", "none"]
CORRECTIONS: tuple[Correction, ...] = ("bh", "bonferroni", "none")


def correction_factor(p_values: Sequence[float], thresholds: Sequence[float], method: Correction) -> float:
    """The factor by which each p-value column's threshold is lowered (p-values and thresholds pair up)."""
    m = len(p_values)
    if m == 0 or method == "none":
        return 1.0
    if method == "bonferroni":
        return 1.0 / m
    if method == "bh":
        ratios = np.sort(np.asarray(p_values, dtype=float) / np.asarray(thresholds, dtype=float))
        passing = np.flatnonzero(ratios <= np.arange(1, m + 1) / m)
        return (passing[-1] + 1) / m if passing.size else 1.0 / m
    raise ValueError(f"unknown correction '{method}'; use one of {', '.join(CORRECTIONS)}")
