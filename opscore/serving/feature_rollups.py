"""Per-feature rollups at ingestion, so live drift and data quality cost the same at any traffic.

For each version the telemetry writer logs, a :class:`RollupPlan` built once from the version's
reference profile (and monitor reference) says how to count a batch of rows: numeric values over
the profile's live bins (plus missing, below / above the training range, and the IQR outliers),
categorical values per profile category (plus missing and unseen, by name), the model's score the
same way as a numeric column, the PCA reconstruction error of each row, and (for a classifier with
a stored calibration) each row's calibrated chance of being right, for accuracy estimated without
labels. The writer merges the counts into ``feature_rollups``, ``multivariate_rollups`` and
``estimate_rollups`` in the transaction that writes the rows; :func:`window_sums` and
:func:`estimate_sums` add them up over a window.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from opscore.data.features import as_category
from opscore.data.multivariate import reconstruction_errors
from opscore.data.profile import live_edges, quartiles
from opscore.models.artifacts import read_document
from opscore.models.calibration import chances_right
from opscore.models.monitor_reference import read_monitor_reference
from opscore.store import (
    FEATURE_BUCKET_SECONDS,
    Store,
    estimate_rollups,
    feature_rollups,
    multivariate_rollups,
)

log = logging.getLogger(__name__)

FEATURE, PREDICTION = "feature", "prediction"
MAX_UNSEEN_NAMES = 50  # per rollup row; further unseen categories are counted, not named
ERROR_BINS = 60
_SIGMAS_SPANNED = 12.0


@dataclass(frozen=True)
class NumericPlan:
    """How one numeric column is counted: the live bins and the range and IQR fences."""

    edges: np.ndarray
    low_fence: float
    high_fence: float

    @classmethod
    def from_profile(cls, column: dict[str, Any]) -> NumericPlan | None:
        edges, _ = live_edges(column)
        if edges.size == 0:
            return None
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
        fences = quartiles(column)
        q1, q3 = fences if fences is not None else (edges[0], edges[-1])
        iqr = q3 - q1
        return cls(edges, q1 - 1.5 * iqr, q3 + 1.5 * iqr)

    @property
    def bins(self) -> int:
        return self.edges.size - 1


@dataclass(frozen=True)
class CategoricalPlan:
    """How one categorical column is counted: the profile's categories, sorted."""

    categories: tuple[str, ...]

    @property
    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.categories)}


@dataclass
class ColumnDelta:
    """What a batch adds to one rollup row."""

    counts: np.ndarray
    rows: int = 0
    missing: int = 0
    below: int = 0
    above: int = 0
    low_outliers: int = 0
    high_outliers: int = 0
    unseen: int = 0
    minimum: float | None = None
    maximum: float | None = None
    unseen_names: Counter = field(default_factory=Counter)

    def add(self, other: ColumnDelta) -> None:
        self.counts = self.counts + other.counts if self.counts.size == other.counts.size else self.counts
        for name in ("rows", "missing", "below", "above", "low_outliers", "high_outliers", "unseen"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.minimum = _pick(min, self.minimum, other.minimum)
        self.maximum = _pick(max, self.maximum, other.maximum)
        self.unseen_names.update(other.unseen_names)


@dataclass
class ErrorDelta:
    """What a batch adds to one multivariate rollup row."""

    histogram: np.ndarray
    count: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, other: ErrorDelta) -> None:
        self.histogram = self.histogram + other.histogram
        self.count += other.count
        self.total += other.total
        self.squares += other.squares


@dataclass
class EstimateDelta:
    """What a batch adds to one estimate rollup row: rows with a chance, its sum and the sum of c(1 - c)."""

    count: int = 0
    chance_sum: float = 0.0
    variance_sum: float = 0.0

    def add(self, other: EstimateDelta) -> None:
        self.count += other.count
        self.chance_sum += other.chance_sum
        self.variance_sum += other.variance_sum


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else choose(a, b)


def error_edges(reference: dict[str, Any]) -> np.ndarray:
    """Fixed bins of reconstruction error for one version: 0 to the reference mean + 12 row σ."""
    high = reference["mean_error"] + _SIGMAS_SPANNED * max(reference["row_error_std"], 1e-9)
    return np.linspace(0.0, high, ERROR_BINS + 1)


@dataclass(frozen=True)
class RollupPlan:
    """Everything needed to count one version's rows, built once per version per writer."""

    version_id: str
    numeric: dict[str, NumericPlan]
    categorical: dict[str, CategoricalPlan]
    prediction: NumericPlan | None
    multivariate: dict[str, Any] | None
    calibration: dict[str, Any] | None = None

    @classmethod
    def load(cls, model_store: Path, version_id: str) -> RollupPlan:
        profile = read_document(model_store, version_id, "reference_profile.json")
        numeric: dict[str, NumericPlan] = {}
        categorical: dict[str, CategoricalPlan] = {}
        for name, column in profile.get("columns", {}).items():
            if column.get("kind") == "numeric":
                plan = NumericPlan.from_profile(column)
                if plan is not None:
                    numeric[name] = plan
            else:
                categorical[name] = CategoricalPlan(tuple(sorted(column.get("frequencies", {}))))
        prediction = NumericPlan.from_profile(profile["prediction"]) if profile.get("prediction") else None
        monitor = read_monitor_reference(model_store, version_id) or {}
        multivariate = monitor.get("multivariate")
        if multivariate is not None and multivariate.get("skipped"):
            multivariate = None
        return cls(version_id, numeric, categorical, prediction, multivariate, monitor.get("calibration"))

    def estimate(self, predictions: list[Any], probabilities: list[Any]) -> EstimateDelta | None:
        """The rows' calibrated chances of being right, summed (None without a calibration)."""
        if self.calibration is None:
            return None
        numbers = np.array([math.nan if p is None else p for p in probabilities], dtype=float)
        chances = chances_right(self.calibration, (), predictions, numbers)
        chances = chances[np.isfinite(chances)]
        return EstimateDelta(int(chances.size), float(chances.sum()), float((chances * (1 - chances)).sum()))

    def count(self, features: list[dict[str, Any]], scores: list[Any]) -> tuple[dict[tuple[str, str], ColumnDelta],
                                                                               ErrorDelta | None]:
        """Count one bucket's rows of this version: per (kind, column) deltas and the error delta."""
        deltas: dict[tuple[str, str], ColumnDelta] = {}
        for name, plan in self.numeric.items():
            deltas[(FEATURE, name)] = count_numeric(plan, [f.get(name) for f in features])
        for name, plan in self.categorical.items():
            deltas[(FEATURE, name)] = count_categorical(plan, [f.get(name) for f in features])
        if self.prediction is not None:
            deltas[(PREDICTION, "score")] = count_numeric(self.prediction, scores)
        errors = None
        if self.multivariate is not None and features:
            values = reconstruction_errors(self.multivariate, pd.DataFrame.from_records(features))
            values = values[np.isfinite(values)]
            edges = error_edges(self.multivariate)
            histogram = np.bincount(np.clip(np.searchsorted(edges, values, side="right") - 1, 0, ERROR_BINS),
                                    minlength=ERROR_BINS + 1).astype(np.int64)
            errors = ErrorDelta(histogram, int(values.size), float(values.sum()), float((values**2).sum()))
        return deltas, errors


def _as_numbers(values: list[Any]) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.array([_number(v) for v in values], dtype=float)


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def count_numeric(plan: NumericPlan, values: list[Any]) -> ColumnDelta:
    """Counts of ``values`` over ``plan``'s bins; values outside the range are counted apart."""
    numbers = _as_numbers(values)
    finite = numbers[np.isfinite(numbers)]
    low, high = plan.edges[0], plan.edges[-1]
    below, above = finite < low, finite > high
    inside = finite[~(below | above)]
    counts = np.bincount(np.searchsorted(plan.edges[1:-1], inside, side="left"), minlength=plan.bins).astype(np.int64)
    return ColumnDelta(
        counts=counts, rows=int(numbers.size), missing=int(numbers.size - finite.size),
        below=int(below.sum()), above=int(above.sum()),
        low_outliers=int((finite < plan.low_fence).sum()), high_outliers=int((finite > plan.high_fence).sum()),
        minimum=float(finite.min()) if finite.size else None, maximum=float(finite.max()) if finite.size else None,
    )


def count_categorical(plan: CategoricalPlan, values: list[Any]) -> ColumnDelta:
    """Counts of ``values`` per profile category; unknown ones are unseen (by name), None/NaN missing."""
    index = plan.index
    counts = np.zeros(len(plan.categories), dtype=np.int64)
    delta = ColumnDelta(counts=counts, rows=len(values))
    for value, n in Counter(values).items():  # distinct values first: a handful per batch
        category = as_category(value)
        if not isinstance(category, str):
            delta.missing += n
        elif category in index:
            counts[index[category]] += n
        else:
            delta.unseen += n
            delta.unseen_names[category] += n
    return delta


RollupKey = tuple[int, str, str]  # bucket, version, source


@dataclass
class FeatureDeltas:
    """What one write adds to the feature and multivariate rollups, keyed by (bucket, version, source)."""

    columns: dict[tuple[int, str, str, str, str], ColumnDelta] = field(default_factory=dict)
    errors: dict[RollupKey, ErrorDelta] = field(default_factory=dict)
    estimates: dict[RollupKey, EstimateDelta] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.columns or self.errors or self.estimates)


def bucket_of(at: float) -> int:
    return int(at // FEATURE_BUCKET_SECONDS) * FEATURE_BUCKET_SECONDS


def _encode(counts: np.ndarray) -> bytes:
    return np.asarray(counts, dtype="<i8").tobytes()


def decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<i8")


def merge(conn: Connection, upserts: dict[str, Any], deltas: FeatureDeltas) -> None:
    """Add ``deltas`` to the stored rows inside the caller's write transaction (rollup lock held)."""
    if deltas.columns:
        buckets = sorted({key[0] for key in deltas.columns})
        existing = conn.execute(select(feature_rollups).where(feature_rollups.c.bucket.in_(buckets)))
        for row in existing:
            delta = deltas.columns.get((row.bucket, row.version_id, row.source, row.kind, row.column_name))
            if delta is not None:
                delta.add(ColumnDelta(
                    counts=decode(row.counts), rows=row.rows, missing=row.missing, below=row.below, above=row.above,
                    low_outliers=row.low_outliers, high_outliers=row.high_outliers, unseen=row.unseen,
                    minimum=row.minimum, maximum=row.maximum, unseen_names=Counter(json.loads(row.unseen_names)),
                ))
        conn.execute(upserts["features"], [
            {"bucket": bucket, "version_id": version, "source": source, "kind": kind, "column_name": column,
             "rows": d.rows, "missing": d.missing, "below": d.below, "above": d.above,
             "low_outliers": d.low_outliers, "high_outliers": d.high_outliers, "unseen": d.unseen,
             "minimum": d.minimum, "maximum": d.maximum, "counts": _encode(d.counts),
             "unseen_names": json.dumps(dict(d.unseen_names.most_common(MAX_UNSEEN_NAMES)))}
            for (bucket, version, source, kind, column), d in sorted(deltas.columns.items())
        ])
    if deltas.errors:
        buckets = sorted({key[0] for key in deltas.errors})
        for row in conn.execute(select(multivariate_rollups).where(multivariate_rollups.c.bucket.in_(buckets))):
            delta = deltas.errors.get((row.bucket, row.version_id, row.source))
            if delta is not None and decode(row.histogram).size == delta.histogram.size:
                delta.add(ErrorDelta(decode(row.histogram), row.count, row.error_sum, row.error_sumsq))
        conn.execute(upserts["multivariate"], [
            {"bucket": bucket, "version_id": version, "source": source, "count": d.count, "error_sum": d.total,
             "error_sumsq": d.squares, "histogram": _encode(d.histogram)}
            for (bucket, version, source), d in sorted(deltas.errors.items())
        ])
    if deltas.estimates:
        conn.execute(upserts["estimates"], [
            {"bucket": bucket, "version_id": version, "source": source, "count": d.count,
             "chance_sum": d.chance_sum, "chance_variance_sum": d.variance_sum}
            for (bucket, version, source), d in sorted(deltas.estimates.items()) if d.count
        ])


def upserts(dialect: Any) -> dict[str, Any]:
    """The upsert statements of both tables (rows are merged in Python first, then written whole)."""
    features = dialect.insert(feature_rollups)
    errors = dialect.insert(multivariate_rollups)
    estimates = dialect.insert(estimate_rollups)
    return {
        # Plain sums add up in SQL.
        "estimates": estimates.on_conflict_do_update(
            index_elements=["bucket", "version_id", "source"],
            set_={name: estimate_rollups.c[name] + estimates.excluded[name]
                  for name in ("count", "chance_sum", "chance_variance_sum")},
        ),
        "features": features.on_conflict_do_update(
            index_elements=["bucket", "version_id", "source", "kind", "column_name"],
            set_={c.name: features.excluded[c.name] for c in feature_rollups.c if not c.primary_key},
        ),
        "multivariate": errors.on_conflict_do_update(
            index_elements=["bucket", "version_id", "source"],
            set_={c.name: errors.excluded[c.name] for c in multivariate_rollups.c if not c.primary_key},
        ),
    }


class Planner:
    """Count batches of records for any version, loading each version's plan once."""

    def __init__(self, model_store: Path) -> None:
        self._model_store = model_store
        self._plans: dict[str, RollupPlan | None] = {}

    def plan(self, version_id: str) -> RollupPlan | None:
        if version_id not in self._plans:
            try:
                self._plans[version_id] = RollupPlan.load(self._model_store, version_id)
            except Exception as exc:  # noqa: BLE001 - a version without a profile is logged, never blocks logging
                log.warning("no feature rollups for version %s: %s", version_id, exc)
                self._plans[version_id] = None
        return self._plans[version_id]

    def deltas(self, records: list[Any]) -> FeatureDeltas:
        """The feature and error deltas of successfully scored ``records`` (PredictionRecord)."""
        groups: dict[RollupKey, list[Any]] = {}
        for r in records:
            if r.status == "ok":
                groups.setdefault((bucket_of(r.at), r.version_id, r.source), []).append(r)
        out = FeatureDeltas()
        for (bucket, version, source), group in groups.items():
            plan = self.plan(version)
            if plan is None:
                continue
            scores = [r.probability if r.probability is not None else r.prediction for r in group]
            columns, errors = plan.count([r.features for r in group], scores)
            for (kind, column), delta in columns.items():
                out.columns[(bucket, version, source, kind, column)] = delta
            if errors is not None:
                out.errors[(bucket, version, source)] = errors
            estimate = plan.estimate([r.prediction for r in group], [r.probability for r in group])
            if estimate is not None:
                out.estimates[(bucket, version, source)] = estimate
        return out


@dataclass
class WindowSums:
    """The rollups of one version and source over a window, added up per (kind, column)."""

    columns: dict[tuple[str, str], ColumnDelta]
    errors: ErrorDelta | None
    buckets: int


def window_sums(store: Store, version_id: str, start: float, end: float, source: str | None = "api") -> WindowSums:
    """Sum the rollup rows whose bucket starts in [start, end) (whole buckets of FEATURE_BUCKET_SECONDS)."""
    return sums_by_window(store, version_id, start, end, max(end - start, 1.0), source)[0]


def sums_by_window(store: Store, version_id: str, start: float, end: float, every: float,
                   source: str | None = "api") -> list[WindowSums]:
    """Rollup sums per window of ``every`` seconds from ``start`` (the last one cut at ``end``), one read.

    A bucket belongs to the window its start falls in; the bucket holding ``start`` counts in the first.
    """
    first = bucket_of(start)
    n_windows = max(1, math.ceil((end - start) / every))
    table, errors_table = feature_rollups, multivariate_rollups
    query = select(table).where(table.c.version_id == version_id, table.c.bucket >= first, table.c.bucket < end)
    errors_query = select(errors_table).where(errors_table.c.version_id == version_id,
                                              errors_table.c.bucket >= first, errors_table.c.bucket < end)
    if source is not None:
        query = query.where(table.c.source == source)
        errors_query = errors_query.where(errors_table.c.source == source)
    windows = [WindowSums({}, None, 0) for _ in range(n_windows)]
    seen: list[set[int]] = [set() for _ in range(n_windows)]
    with store.read() as conn:
        for row in conn.execute(query):
            w = min(max(int((row.bucket - start) // every), 0), n_windows - 1)
            seen[w].add(row.bucket)
            delta = ColumnDelta(
                counts=decode(row.counts), rows=row.rows, missing=row.missing, below=row.below, above=row.above,
                low_outliers=row.low_outliers, high_outliers=row.high_outliers, unseen=row.unseen,
                minimum=row.minimum, maximum=row.maximum,
                unseen_names=Counter(json.loads(row.unseen_names)) if row.unseen else Counter(),
            )
            columns = windows[w].columns
            key = (row.kind, row.column_name)
            if key in columns:
                columns[key].add(delta)
            else:
                columns[key] = delta
        for row in conn.execute(errors_query):
            w = min(max(int((row.bucket - start) // every), 0), n_windows - 1)
            delta_e = ErrorDelta(decode(row.histogram), row.count, row.error_sum, row.error_sumsq)
            if windows[w].errors is None:
                windows[w].errors = delta_e
            elif windows[w].errors.histogram.size == delta_e.histogram.size:
                windows[w].errors.add(delta_e)
    for window, buckets in zip(windows, seen, strict=True):
        window.buckets = len(buckets)
    return windows


def estimate_sums(store: Store, version_id: str, edges: list[float], source: str | None = None) -> list[EstimateDelta]:
    """Estimate rollups per window [edges[i], edges[i+1]) of whole buckets (a bucket counts where it starts)."""
    table = estimate_rollups
    query = select(table.c.bucket, table.c.count, table.c.chance_sum, table.c.chance_variance_sum).where(
        table.c.version_id == version_id, table.c.bucket >= edges[0], table.c.bucket < edges[-1])
    if source is not None:
        query = query.where(table.c.source == source)
    sums = [EstimateDelta() for _ in range(len(edges) - 1)]
    bounds = np.asarray(edges, dtype=float)
    with store.read() as conn:
        for bucket, count, chance_sum, variance_sum in conn.execute(query):
            w = int(np.searchsorted(bounds, bucket, side="right")) - 1
            sums[w].add(EstimateDelta(int(count), float(chance_sum), float(variance_sum)))
    return sums
