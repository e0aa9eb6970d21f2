"""What a drift report is asked to do, declared apart from the code that computes it.

By default each column gets Evidently's test: numeric columns (more than 5 distinct values) KS when
the reference has at most 1,000 values, else the normed Wasserstein distance; categorical columns
chi-square (more than two categories) or Z (two) on small data, else Jensen-Shannon. ``column_tests``
overrides a column's test and threshold: ``{"age": ("psi", 0.2), "city": "chisquare"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.monitoring import stattests
from opscore.monitoring.corrections import CORRECTIONS, Correction
from opscore.monitoring.stattests import CATEGORICAL, NUMERIC, StatTest
from opscore.monitoring.thresholds import Threshold

SMALL_REFERENCE = 1000  # up to this many reference values: p-value tests; above: distances
MAX_CATEGORY_VALUES = 5  # a numeric column with at most this many distinct values is categorical

ColumnTest = str | tuple[str, float | Threshold]


@dataclass(frozen=True)
class DriftOptions:
    """Per-column test overrides, the multiple-testing correction and the dataset drift share.

    ``drift_share``: the dataset drifted when at least this share of its columns did.
    ``bins``: reference-quantile bins for a binned test (PSI, Jensen-Shannon) on a numeric column.
    """

    column_tests: Mapping[str, ColumnTest] = field(default_factory=dict)
    correction: Correction = "bh"
    drift_share: float = 0.5
    bins: int = 10

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise BadInputError(f"unknown correction '{self.correction}'; use one of {', '.join(CORRECTIONS)}")
        if not 0 < self.drift_share <= 1:
            raise BadInputError(f"drift_share is a share of columns in (0, 1], got {self.drift_share}")
        if self.bins < 2:
            raise BadInputError(f"bins must be at least 2, got {self.bins}")
        for column in self.column_tests:
            self.override(column)  # unknown test names and wrong threshold kinds fail here, early

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftOptions:
        """The options ``opscore.toml`` sets: ``drift_correction``, ``drift_share`` and ``[drift_columns]``."""
        column_tests: dict[str, ColumnTest] = {}
        for column, chosen in settings.drift_columns.items():
            if isinstance(chosen, str):
                column_tests[column] = chosen
            elif isinstance(chosen, dict) and isinstance(chosen.get("test"), str):
                threshold = chosen.get("threshold")
                if threshold is not None and not isinstance(threshold, int | float):
                    raise BadInputError(f"drift_columns.{column}: threshold must be a number, got {threshold!r}")
                column_tests[column] = chosen["test"] if threshold is None else (chosen["test"], float(threshold))
            else:
                raise BadInputError(f"drift_columns.{column}: expected a test name or {{test = ..., threshold = ...}}, "
                                    f"got {chosen!r}")
        return cls(column_tests=column_tests, correction=settings.drift_correction, drift_share=settings.drift_share)

    def override(self, column: str) -> tuple[StatTest, Threshold] | None:
        """The test and threshold the caller chose for ``column``, if any."""
        chosen = self.column_tests.get(column)
        if chosen is None:
            return None
        name, value = (chosen, None) if isinstance(chosen, str) else chosen
        test = stattests.get_test(name)
        return test, test.threshold(value)

    def test_for(self, column: str, kind: str, reference_values: int, categories: int) -> tuple[StatTest, Threshold]:
        """The test and threshold for one column: the override, else Evidently's default choice."""
        chosen = self.override(column)
        if chosen is not None:
            test, threshold = chosen
            if kind not in test.kinds:
                raise BadInputError(f"column '{column}' is {kind}; test '{test.name}' applies to {', '.join(sorted(test.kinds))} columns")
            return test, threshold
        if kind == NUMERIC:
            name = "ks" if reference_values <= SMALL_REFERENCE else "wasserstein"
        elif kind == CATEGORICAL:
            if reference_values > SMALL_REFERENCE:
                name = "jensenshannon"
            else:
                name = "chisquare" if categories > 2 else "z"
        else:
            raise ValueError(f"unknown column kind '{kind}'")
        test = stattests.get_test(name)
        return test, test.default_threshold
