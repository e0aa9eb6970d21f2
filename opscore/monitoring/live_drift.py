"""Drift of live traffic: a version's logged rows over a window against its stored reference profile.

Nothing here reads raw predictions or training data. The telemetry writer keeps per-feature counts
over the profile's bins (:mod:`opscore.serving.feature_rollups`); a window's current side is the
sum of those rows and the reference side is the profile's own counts over the same bins, so a
report costs the same at a thousand or a million logged predictions. The tests are the file
report's (same choice per column, thresholds and correction); the binned KS and Wasserstein forms
state their error bounds (``opscore.monitoring.stattests.ks`` and ``.wasserstein``), and the live
bins keep them within 0.005 and about 0.03 (see ``opscore.data.profile``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from opscore.config import Settings
from opscore.data.multivariate import alert_bounds
from opscore.data.profile import live_edges
from opscore.exceptions import BadInputError, NotFoundError
from opscore.models import registry
from opscore.models.artifacts import read_document
from opscore.models.monitor_reference import read_monitor_reference
from opscore.monitoring.corrections import correction_factor
from opscore.monitoring.distributions import Counts
from opscore.monitoring.drift_options import DriftOptions
from opscore.monitoring.drift_report import ColumnDrift, DriftReport
from opscore.monitoring.file_drift import Verdict
from opscore.monitoring.stattests import CATEGORICAL, NUMERIC
from opscore.monitoring.thresholds import Outcome
from opscore.serving.feature_rollups import FEATURE, PREDICTION, ColumnDelta, WindowSums, sums_by_window
from opscore.store import open_store

OTHER_UNSEEN = "(other unseen)"
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86_400}


def parse_window(text: str) -> float:
    """A window length like "90m", "24h" or "7d" in seconds."""
    match = _WINDOW.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise BadInputError(f"window {text!r} is not a length like 90m, 24h or 7d (a positive number, then m, h or d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class LiveDriftReport:
    """Drift of one version's live traffic over [start, end) against its reference profile."""

    report: DriftReport
    version: str
    start: float
    end: float
    rows: int
    prediction_drift: ColumnDrift | None
    multivariate: dict | None
    # Fewer rows than ``drift_min_rows`` (but some): every verdict is "too few rows", none drifted.
    too_few_rows: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``opscore drift --json`` contract, then ``window``, ``version``, prediction and multivariate drift."""
        out = self.report.to_dict()
        out["window"] = {"start": float(self.start), "end": float(self.end), "rows": int(self.rows)}
        out["version"] = self.version
        out["prediction_drift"] = self.prediction_drift.to_dict() if self.prediction_drift else None
        out["multivariate"] = self.multivariate
        out["too_few_rows"] = bool(self.too_few_rows)
        return out


@dataclass(frozen=True)
class _Reference:
    version: str
    profile: dict[str, Any]
    multivariate: dict[str, Any] | None


def resolve_version(settings: Settings, start: float, end: float, version: str | None) -> str:
    """``version`` if it exists; else the version production had at the window's end (or has now)."""
    store = open_store(settings)
    if version is not None:
        registry.get_version(store, version)
        return version
    served = registry.served_at(store, end) or registry.alias_target(store)
    if served is None:
        raise NotFoundError("no version has been in production; name one with --version")
    return served


def _reference(settings: Settings, version: str) -> _Reference:
    profile = read_document(settings.model_store_path, version, "reference_profile.json")
    monitor = read_monitor_reference(settings.model_store_path, version) or {}
    multivariate = monitor.get("multivariate")
    return _Reference(version, profile, None if not multivariate or multivariate.get("skipped") else multivariate)


def numeric_counts(column: dict[str, Any], current: ColumnDelta | None) -> Counts:
    """Reference and current counts over the live bins, widened to the current values beyond the range."""
    edges, reference = live_edges(column)
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    values = np.zeros(reference.size, dtype=np.int64) if current is None else current.counts.astype(np.int64)
    if current is not None and current.below and current.minimum is not None:
        edges, reference, values = np.concatenate(([current.minimum], edges)), np.concatenate(([0], reference)), \
            np.concatenate(([current.below], values))
    if current is not None and current.above and current.maximum is not None:
        edges, reference, values = np.concatenate((edges, [current.maximum])), np.concatenate((reference, [0])), \
            np.concatenate((values, [current.above]))
    n, std = column.get("n", 0) * (1 - column.get("missing_share", 0.0)), column.get("std")
    population_std = None if std is None else float(std) * math.sqrt(max(n - 1, 0) / n) if n > 1 else 0.0
    return Counts(reference=reference, current=values, edges=edges, reference_std=population_std)


def categorical_counts(column: dict[str, Any], current: ColumnDelta | None) -> Counts:
    """Reference and current counts per profile category, then each unseen category by name."""
    frequencies = column.get("frequencies", {})
    labels = sorted(frequencies)
    reference = [int(frequencies[label]) for label in labels]
    values = [0] * len(labels) if current is None else [int(v) for v in current.counts]
    if current is not None:
        named = 0
        for name, count in current.unseen_names.most_common():
            labels.append(name)
            reference.append(0)
            values.append(int(count))
            named += int(count)
        if current.unseen > named:
            labels.append(OTHER_UNSEEN)
            reference.append(0)
            values.append(current.unseen - named)
    return Counts(reference=np.asarray(reference, dtype=np.int64), current=np.asarray(values, dtype=np.int64),
                  labels=tuple(labels))


def _verdict(name: str, column: dict[str, Any], current: ColumnDelta | None, options: DriftOptions) -> Verdict:
    kind = NUMERIC if column.get("kind") == "numeric" else CATEGORICAL
    counts = numeric_counts(column, current) if kind == NUMERIC else categorical_counts(column, current)
    missing_reference = float(column.get("missing_share", 0.0))
    missing_current = current.missing / current.rows if current is not None and current.rows else 0.0
    categories = int(np.count_nonzero(counts.reference + counts.current))
    test, threshold = options.test_for(name, kind, counts.n_reference, categories)
    unseen = tuple(label for label, ref, cur in zip(counts.labels, counts.reference, counts.current, strict=True)
                   if ref == 0 and cur > 0) if counts.labels else ()
    common = {"kind": kind, "test": test, "threshold": threshold,
              "missing_reference": missing_reference, "missing_current": missing_current}
    if counts.n_reference == 0 or counts.n_current == 0:
        if counts.n_reference == counts.n_current:
            return Verdict(outcome=Outcome(0.0), reason="no values on either side", settled=False, **common)
        if counts.n_reference == 0:
            return Verdict(outcome=Outcome(0.0), reason="reference has no values (all missing); nothing to compare",
                           settled=True, unseen=unseen, **common)
        reason = "no rows in the window" if current is None or current.rows == 0 else \
            "current has no values (all missing); nothing to compare"
        return Verdict(outcome=Outcome(0.0), reason=reason, settled=current is not None and current.rows > 0, **common)
    if categories == 1 and kind == CATEGORICAL:
        same = Outcome(0.0, 1.0 if threshold.uses_p_value else None)
        return Verdict(outcome=same, reason="constant: the same single value on both sides", settled=False, **common)
    outcome = test.run(counts, options.bins)
    return Verdict(outcome=outcome, unseen=unseen, **common)


def too_few_rows_reason(rows: int, min_rows: int) -> str:
    return f"too few rows: {rows:,} in the window, a verdict needs at least {min_rows:,}"


def compare(profile: dict[str, Any], sums: WindowSums, options: DriftOptions,
            min_rows: int = 0) -> tuple[DriftReport, ColumnDrift | None]:
    """Every profile column's verdict on the window's rollup sums, and the prediction score's.

    With fewer than ``min_rows`` rows (but some), the statistics are still computed and shown, but
    every verdict is "too few rows": not drifted, and out of the multiple-testing family.
    """
    columns = profile.get("columns", {})
    verdicts = {name: _verdict(name, column, sums.columns.get((FEATURE, name)), options)
                for name, column in columns.items()}
    rows = _rows(sums)
    small = 0 < rows < min_rows
    if small:
        verdicts = {name: _too_few(v, rows, min_rows) for name, v in verdicts.items()}
    family = [v for v in verdicts.values() if v.in_correction_family]
    factor = correction_factor([v.outcome.p_value for v in family], [v.threshold.value for v in family],
                               options.correction)
    report = DriftReport(columns={name: v.finish(factor) for name, v in verdicts.items()},
                         threshold_share=options.drift_share)
    prediction = None
    if profile.get("prediction"):
        score = _verdict("prediction", profile["prediction"], sums.columns.get((PREDICTION, "score")),
                         DriftOptions(correction=options.correction, drift_share=options.drift_share))
        prediction = (_too_few(score, rows, min_rows) if small else score).finish(1.0)
    return report, prediction


def _too_few(verdict: Verdict, rows: int, min_rows: int) -> Verdict:
    if verdict.settled is not None and verdict.reason:  # already a verdict with its own reason (e.g. all missing)
        return verdict
    return replace(verdict, settled=False, reason=too_few_rows_reason(rows, min_rows))


def _rows(sums: WindowSums) -> int:
    return max((delta.rows for (kind, _), delta in sums.columns.items() if kind == FEATURE), default=0)


def _multivariate(reference: _Reference, sums: WindowSums) -> dict[str, Any] | None:
    if reference.multivariate is None:
        return None
    errors = sums.errors
    if errors is None or errors.count == 0:
        return {"rows": 0, "mean_error": None, "lower": None, "upper": None, "alert": False,
                "reference_mean_error": reference.multivariate["mean_error"]}
    lower, upper = alert_bounds(reference.multivariate, errors.count)
    mean = errors.total / errors.count
    return {"rows": errors.count, "mean_error": mean, "lower": lower, "upper": upper,
            "alert": bool(mean < lower or mean > upper), "reference_mean_error": reference.multivariate["mean_error"]}


def _live_reports(settings: Settings, start: float, end: float, every: float, version: str | None,
                  source: str, total: bool = False) -> list[LiveDriftReport]:
    """One report per window; with ``total``, then one over the whole range, from the same read."""
    if not end > start:
        raise BadInputError(f"the window must end after it starts (start {start}, end {end})")
    chosen = resolve_version(settings, start, end, version)
    reference = _reference(settings, chosen)
    options = DriftOptions.from_settings(settings)
    windows = sums_by_window(open_store(settings), chosen, start, end, every, source)
    spans = [(start + i * every, min(start + (i + 1) * every, end)) for i in range(len(windows))]
    if total and len(windows) > 1:
        windows, spans = [*windows, _added(windows)], [*spans, (start, end)]
    reports = []
    min_rows = max(0, int(settings.drift_min_rows))
    for (w_start, w_end), sums in zip(spans, windows, strict=True):
        report, prediction = compare(reference.profile, sums, options, min_rows)
        rows = _rows(sums)
        reports.append(LiveDriftReport(report, chosen, w_start, w_end, rows, prediction,
                                       _multivariate(reference, sums), too_few_rows=0 < rows < min_rows))
    return reports


def _added(windows: list[WindowSums]) -> WindowSums:
    """The sums of several windows as one (copies: the windows' own sums stay as they are)."""
    out = WindowSums({}, None, 0)
    for window in windows:
        for key, delta in window.columns.items():
            if key in out.columns:
                out.columns[key].add(delta)
            else:
                out.columns[key] = replace(delta, counts=delta.counts.copy(), unseen_names=Counter(delta.unseen_names))
        if window.errors is not None:
            if out.errors is None:
                out.errors = replace(window.errors, histogram=window.errors.histogram.copy())
            elif out.errors.histogram.size == window.errors.histogram.size:
                out.errors.add(window.errors)
        out.buckets += window.buckets
    return out


def drift_with_windows(settings: Settings, start: float, end: float, every: float, version: str | None = None,
                       source: str = "api") -> tuple[LiveDriftReport, list[LiveDriftReport]]:
    """The report over [start, end) and one per window of ``every`` seconds, from one read of the rollups."""
    if not every > 0 or (end - start) / every > 1_000:
        raise BadInputError(f"windows of {every} seconds over {end - start:.0f} seconds: use a positive length "
                            "giving at most 1,000 windows")
    reports = _live_reports(settings, start, end, every, version, source, total=True)
    if len(reports) == 1:
        return reports[0], reports
    return reports[-1], reports[:-1]


def live_drift(settings: Settings, start: float, end: float, version: str | None = None,
               source: str = "api", *, sums: WindowSums | None = None) -> LiveDriftReport:
    """Drift of ``version``'s traffic (default: production's) over [start, end) from the rollups.

    ``sums`` are the window's rollup sums when the caller already read them (the alert signals share
    one read between drift and data quality)."""
    if sums is None:
        return _live_reports(settings, start, end, end - start, version, source)[0]
    chosen = resolve_version(settings, start, end, version)
    reference = _reference(settings, chosen)
    report, prediction = compare(reference.profile, sums, DriftOptions.from_settings(settings))
    return LiveDriftReport(report, chosen, start, end, _rows(sums), prediction, _multivariate(reference, sums))


def drift_over_time(settings: Settings, start: float, end: float, every: float, version: str | None = None,
                    source: str = "api") -> list[LiveDriftReport]:
    """One report per window of ``every`` seconds from ``start``, all from one read of the rollups."""
    if not every > 0 or (end - start) / every > 1_000:
        raise BadInputError(f"windows of {every} seconds over {end - start:.0f} seconds: use a positive length "
                            "giving at most 1,000 windows")
    return _live_reports(settings, start, end, every, version, source)


def column_distribution(settings: Settings, version: str, column: str, start: float, end: float,
                        source: str = "api") -> Counts:
    """Reference and current counts of one column (or "prediction") over the same bins, for charts."""
    reference = _reference(settings, resolve_version(settings, start, end, version))
    sums = sums_by_window(open_store(settings), reference.version, start, end, max(end - start, 1.0), source)[0]
    if column in reference.profile.get("columns", {}):
        profile_column, current = reference.profile["columns"][column], sums.columns.get((FEATURE, column))
    elif column == "prediction" and reference.profile.get("prediction"):
        profile_column, current = reference.profile["prediction"], sums.columns.get((PREDICTION, "score"))
    else:
        known = ", ".join(reference.profile.get("columns", {}))
        raise NotFoundError(f"version {reference.version!r} has no column {column!r}; it has {known}")
    if profile_column.get("kind") == "numeric":
        return numeric_counts(profile_column, current)
    return categorical_counts(profile_column, current)


def multivariate_over_time(settings: Settings, start: float, end: float, every: float, version: str | None = None,
                           source: str = "api") -> pd.DataFrame:
    """Mean PCA reconstruction error per window with its alert band (reference mean ± 3σ for that many rows)."""
    return multivariate_frame(drift_over_time(settings, start, end, every, version, source))


def multivariate_frame(reports: list[LiveDriftReport]) -> pd.DataFrame:
    """The multivariate score of each window's report, as :func:`multivariate_over_time` gives it."""
    rows = []
    for report in reports:
        m = report.multivariate or {}
        rows.append({"start": report.start, "end": report.end, "rows": int(m.get("rows") or 0),
                     "mean_error": m.get("mean_error"), "lower": m.get("lower"), "upper": m.get("upper"),
                     "alert": bool(m.get("alert", False))})
    frame = pd.DataFrame(rows, columns=["start", "end", "rows", "mean_error", "lower", "upper", "alert"])
    return frame.astype({"mean_error": float, "lower": float, "upper": float})

