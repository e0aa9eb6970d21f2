"""Data quality of live traffic: missing values, values outside the training range, outliers, rejected rows.

Read from the rollups the telemetry writer keeps (:mod:`opscore.serving.feature_rollups` and the
``rejected_cells`` table), so any window costs the same at any traffic. Outliers follow the IQR rule
on the version's reference profile (below Q1 - 1.5 IQR or above Q3 + 1.5 IQR). Rejected rows were
refused before any prediction, so they are counted by column and reason rather than as rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select

from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.models.artifacts import read_document
from opscore.monitoring.live_drift import resolve_version
from opscore.serving.feature_rollups import FEATURE, WindowSums, sums_by_window
from opscore.store import open_store, rejected_cells


@dataclass(frozen=True)
class ColumnQuality:
    """One column over a window; shares are of the logged rows (``rows``)."""

    kind: str
    rows: int
    missing_share: float
    out_of_range_share: float
    outlier_share: float
    unseen_share: float = 0.0


@dataclass(frozen=True)
class QualityReport:
    """Every column's quality over [start, end), the rejected rows and what crossed a threshold."""

    version: str
    start: float
    end: float
    rows: int
    columns: dict[str, ColumnQuality] = field(default_factory=dict)
    rejected: dict[tuple[str, str], int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def to_df(self) -> pd.DataFrame:
        """One row per column: kind, rows and the three shares (and unseen categories' share)."""
        table = pd.DataFrame.from_dict({name: vars(q) for name, q in self.columns.items()}, orient="index",
                                       columns=["kind", "rows", "missing_share", "out_of_range_share",
                                                "outlier_share", "unseen_share"])
        table.index.name = "column"
        return table


def _columns(sums: WindowSums, kinds: dict[str, str]) -> dict[str, ColumnQuality]:
    out = {}
    for name, kind in kinds.items():
        delta = sums.columns.get((FEATURE, name))
        rows = delta.rows if delta is not None else 0
        if not rows:
            out[name] = ColumnQuality(kind, 0, 0.0, 0.0, 0.0)
            continue
        out[name] = ColumnQuality(kind, rows, delta.missing / rows, (delta.below + delta.above) / rows,
                                  (delta.low_outliers + delta.high_outliers) / rows, delta.unseen / rows)
    return out


def _rejected(settings: Settings, version: str, start: float, end: float, source: str) -> dict[tuple[str, str], int]:
    table = rejected_cells
    query = (select(table.c.column_name, table.c.reason, func.sum(table.c.count))
             .where(table.c.version_id == version, table.c.source == source,
                    table.c.minute >= int(start // 60), table.c.minute < end / 60)
             .group_by(table.c.column_name, table.c.reason))
    with open_store(settings).read() as conn:
        return {(column, reason): int(count) for column, reason, count in conn.execute(query)}


def _findings(settings: Settings, columns: dict[str, ColumnQuality], rejected: dict[tuple[str, str], int]) -> list[str]:
    findings = []
    for name, q in columns.items():
        if q.missing_share > settings.quality_missing_share:
            findings.append(f"{name}: {q.missing_share:.1%} missing (threshold {settings.quality_missing_share:.0%})")
        if q.outlier_share > settings.quality_outlier_share:
            findings.append(f"{name}: {q.outlier_share:.1%} outliers by the IQR rule "
                            f"(threshold {settings.quality_outlier_share:.0%})")
    for (column, reason), count in sorted(rejected.items(), key=lambda item: -item[1]):
        findings.append(f"{column}: {count} rejected row(s), {reason.replace('_', ' ')}")
    return findings


def _profile_kinds(settings: Settings, version: str) -> dict[str, str]:
    profile = read_document(settings.model_store_path, version, "reference_profile.json")
    return {name: column.get("kind", "numeric") for name, column in profile.get("columns", {}).items()}


def data_quality(settings: Settings, start: float, end: float, version: str | None = None,
                 source: str = "api", *, sums: WindowSums | None = None) -> QualityReport:
    """Quality of ``version``'s traffic (default: production's) over [start, end); ``sums`` are the
    window's rollup sums when the caller already read them."""
    if not end > start:
        raise BadInputError(f"the window must end after it starts (start {start}, end {end})")
    chosen = resolve_version(settings, start, end, version)
    kinds = _profile_kinds(settings, chosen)
    if sums is None:
        sums = sums_by_window(open_store(settings), chosen, start, end, end - start, source)[0]
    columns = _columns(sums, kinds)
    rejected = _rejected(settings, chosen, start, end, source)
    rows = max((q.rows for q in columns.values()), default=0)
    return QualityReport(chosen, start, end, rows, columns, rejected, _findings(settings, columns, rejected))


def quality_over_time(settings: Settings, start: float, end: float, every: float, version: str | None = None,
                      source: str = "api") -> pd.DataFrame:
    """Per window of ``every`` seconds and column: start, column, rows and the three shares."""
    if not every > 0 or not end > start or (end - start) / every > 1_000:
        raise BadInputError("windows must have a positive length, inside a window that ends after it starts, "
                            "and number at most 1,000")
    chosen = resolve_version(settings, start, end, version)
    kinds = _profile_kinds(settings, chosen)
    rows = []
    for i, sums in enumerate(sums_by_window(open_store(settings), chosen, start, end, every, source)):
        for name, q in _columns(sums, kinds).items():
            rows.append({"start": start + i * every, "column": name, "rows": q.rows, "missing_share": q.missing_share,
                         "out_of_range_share": q.out_of_range_share, "outlier_share": q.outlier_share})
    return pd.DataFrame(rows, columns=["start", "column", "rows", "missing_share", "out_of_range_share",
                                       "outlier_share"])
