"""Drift between two data files: every column of ``current`` against the same column of ``reference``.

Each column is read once: its finite values sorted once and shared by whatever the column's test
needs (raw samples, quantile bins, category counts); columns run in parallel threads, since numpy
releases the GIL for the heavy parts. NaN and +-inf are dropped and reported as missing shares.
A column no test can judge (no values on a side, one constant value on both) still gets a verdict,
with the reason; only input the caller must fix raises ``BadInputError``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opscore.exceptions import BadInputError
from opscore.monitoring.corrections import correction_factor
from opscore.monitoring.distributions import Counts, Samples
from opscore.monitoring.drift_options import MAX_CATEGORY_VALUES, DriftOptions
from opscore.monitoring.drift_report import ColumnDrift, DriftReport
from opscore.monitoring.stattests import CATEGORICAL, NUMERIC, StatTest
from opscore.monitoring.thresholds import Outcome, Threshold


def file_drift(reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions | None = None) -> DriftReport:
    """Compare every column of ``current`` with ``reference`` (same column names, any order)."""
    options = options or DriftOptions()
    names = _shared_columns(reference, current, options)
    workers = min(len(names), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        verdicts = list(pool.map(lambda name: _column_verdict(name, reference[name], current[name], options), names))

    family = [v for v in verdicts if v.in_correction_family]
    factor = correction_factor([v.outcome.p_value for v in family], [v.threshold.value for v in family], options.correction)
    columns = {str(name): verdict.finish(factor) for name, verdict in zip(names, verdicts, strict=True)}
    return DriftReport(columns=columns, threshold_share=options.drift_share)


@dataclass(frozen=True)
class Verdict:
    """A column's result before the correction across columns.

    ``settled`` is a verdict no threshold decides (a side without values, one constant value on both
    sides); such columns stay out of the multiple-testing family.
    """

    kind: str
    test: StatTest
    threshold: Threshold
    outcome: Outcome
    missing_reference: float
    missing_current: float
    unseen: tuple[str, ...] = ()
    reason: str | None = None
    settled: bool | None = None

    @property
    def in_correction_family(self) -> bool:
        return self.settled is None and self.threshold.uses_p_value

    def finish(self, factor: float) -> ColumnDrift:
        threshold = self.threshold.scaled(factor) if self.in_correction_family else self.threshold
        return ColumnDrift(
            kind=self.kind,
            test=self.test.name,
            statistic=self.outcome.statistic,
            p_value=self.outcome.p_value,
            threshold=threshold.value,
            drifted=threshold.drifted(self.outcome) if self.settled is None else self.settled,
            missing_share_reference=self.missing_reference,
            missing_share_current=self.missing_current,
            reason=self.reason,
            unseen_categories=self.unseen,
        )


def _column_verdict(name: str, reference: pd.Series, current: pd.Series, options: DriftOptions) -> Verdict:
    kind, data, missing_reference, missing_current = _read_column(reference, current)
    if isinstance(data, Samples):
        n_reference, n_current, categories = data.reference.size, data.current.size, 0
    else:
        n_reference, n_current, categories = data.n_reference, data.n_current, int(np.count_nonzero(data.reference + data.current))
    test, threshold = options.test_for(str(name), kind, n_reference, categories)
    common = {"kind": kind, "test": test, "threshold": threshold,
              "missing_reference": missing_reference, "missing_current": missing_current}
    unseen = _unseen_categories(data) if isinstance(data, Counts) else ()

    if n_reference == 0 or n_current == 0:
        if n_reference == n_current:
            return Verdict(outcome=Outcome(0.0), reason="no values on either side", settled=False, **common)
        side = "current" if n_current == 0 else "reference"
        return Verdict(outcome=Outcome(0.0), reason=f"{side} has no values (all missing); nothing to compare",
                        settled=True, unseen=unseen, **common)
    if categories == 1:
        same = Outcome(0.0, 1.0 if threshold.uses_p_value else None)
        return Verdict(outcome=same, reason="constant: the same single value on both sides", settled=False, **common)
    try:
        outcome = test.run(data, options.bins)
    except BadInputError as error:
        raise BadInputError(f"column '{name}': {error}") from None
    reason = "reference is constant" if isinstance(data, Samples) and data.reference[0] == data.reference[-1] else None
    return Verdict(outcome=outcome, unseen=unseen, reason=reason, **common)


def _read_column(reference: pd.Series, current: pd.Series) -> tuple[str, Samples | Counts, float, float]:
    """The column's kind, its comparable data, and each side's share of missing values."""
    if _is_numeric(reference) and _is_numeric(current):
        samples = Samples.from_values(
            reference.to_numpy(dtype=float, na_value=np.nan), current.to_numpy(dtype=float, na_value=np.nan)
        )
        missing = (_share_missing(samples.reference.size, len(reference)), _share_missing(samples.current.size, len(current)))
        values = _few_distinct(samples)
        if values is None:
            return NUMERIC, samples, *missing
        counts = Counts(
            reference=_sorted_value_counts(samples.reference, values),
            current=_sorted_value_counts(samples.current, values),
            labels=tuple(_label(v) for v in values),
        )
        return CATEGORICAL, counts, *missing

    ref_counts, cur_counts = (_category_counts(side) for side in (reference, current))
    labels = sorted(set(ref_counts.index) | set(cur_counts.index))
    counts = Counts(
        reference=ref_counts.reindex(labels, fill_value=0).to_numpy(dtype=np.int64),
        current=cur_counts.reindex(labels, fill_value=0).to_numpy(dtype=np.int64),
        labels=tuple(labels),
    )
    missing = (_share_missing(counts.n_reference, len(reference)), _share_missing(counts.n_current, len(current)))
    return CATEGORICAL, counts, *missing


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _share_missing(present: int, total: int) -> float:
    return (total - present) / total if total else 0.0


def _few_distinct(samples: Samples) -> np.ndarray | None:
    """The distinct values of both samples when there are 1 to MAX_CATEGORY_VALUES, else None."""
    distinct = []
    for values in (samples.reference, samples.current):
        if values.size and np.count_nonzero(values[1:] != values[:-1]) >= MAX_CATEGORY_VALUES:
            return None
        distinct.append(np.unique(values))
    union = np.union1d(*distinct)
    return union if 0 < union.size <= MAX_CATEGORY_VALUES else None


def _sorted_value_counts(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, values, side="right") - np.searchsorted(sorted_values, values, side="left")


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _category_counts(column: pd.Series) -> pd.Series:
    counts = column.value_counts(dropna=True)
    counts.index = counts.index.map(str)
    return counts.groupby(level=0).sum()


def _unseen_categories(counts: Counts) -> tuple[str, ...]:
    if counts.labels is None:
        return ()
    return tuple(label for label, ref, cur in zip(counts.labels, counts.reference, counts.current, strict=True)
                 if ref == 0 and cur > 0)


def _shared_columns(reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions) -> list:
    for side, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise BadInputError(f"the {side} data must be a table (DataFrame), got {type(frame).__name__}")
        duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
        if duplicated:
            raise BadInputError(f"the {side} data repeats columns: {', '.join(map(str, duplicated))}")
    missing_current = [c for c in reference.columns if c not in current.columns]
    missing_reference = [c for c in current.columns if c not in reference.columns]
    if missing_current or missing_reference:
        problems = []
        if missing_current:
            problems.append(f"current lacks {', '.join(map(str, missing_current))}")
        if missing_reference:
            problems.append(f"reference lacks {', '.join(map(str, missing_reference))}")
        raise BadInputError(f"reference and current must have the same columns: {'; '.join(problems)}")
    if len(reference.columns) == 0:
        raise BadInputError("no columns to compare")
    unknown = [c for c in options.column_tests if c not in set(map(str, reference.columns))]
    if unknown:
        raise BadInputError(f"test overrides name columns the data does not have: {', '.join(unknown)}")
    return list(reference.columns)
