"""Data quality: missing values, values outside the training range, outliers and rejected rows.

Read from :func:`opscore.monitoring.data_quality.data_quality` (sums of the rollups kept at
ingestion), for production's API traffic. A column past ``quality_missing_share`` or
``quality_outlier_share`` is a warning; past ``health_critical_factor`` times that, critical.
"""

from __future__ import annotations

from opscore.config import Settings
from opscore.monitoring.data_quality import data_quality
from opscore.monitoring.health.status import CheckResult, level


def check_data_quality(settings: Settings, start: float, end: float, version: str) -> CheckResult:
    """Per-column missing, out-of-range and outlier shares and rejected rows of ``version``'s traffic."""
    report = data_quality(settings, start, end, version=version)
    rejected = int(sum(report.rejected.values()))
    factor = settings.health_critical_factor
    result = CheckResult(figures={
        "version": version, "rows": report.rows, "rejected_rows": rejected,
        "worst_missing_share": max((q.missing_share for q in report.columns.values()), default=None),
        "worst_outlier_share": max((q.outlier_share for q in report.columns.values()), default=None),
        "worst_out_of_range_share": max((q.out_of_range_share for q in report.columns.values()), default=None),
        "rejected": {f"{column}: {reason}": count for (column, reason), count in sorted(report.rejected.items())},
    })
    if not report.rows and not rejected:
        result.note(f"no API traffic for {version} in the last {(end - start) / 3600:g} h: data quality was not judged")
        return result
    for name, q in report.columns.items():
        for share, line, what, advice in (
            (q.missing_share, settings.quality_missing_share, "missing",
             "find the caller or upstream join that stopped sending the column"),
            (q.outlier_share, settings.quality_outlier_share, "outliers by the training data's IQR rule",
             "check the column's units and its source; compare distributions on the Drift page"),
        ):
            status = level(share, line + 1e-12, line * factor)
            if status != "healthy":
                result.raise_to(status, f"{name}: {share:.1%} {what} (line {line:.0%})", advice)
    if rejected:
        share = rejected / (rejected + report.rows)
        top = max(report.rejected.items(), key=lambda item: item[1])
        (column, reason), count = top
        status = level(share, settings.quality_missing_share + 1e-12, settings.quality_missing_share * factor)
        text = (f"{rejected:,} row(s) rejected before the model ({share:.1%}); most: {column}, "
                f"{reason.replace('_', ' ')} ({count:,})")
        if status == "healthy":
            result.note(text)
        else:
            result.raise_to(status, text, "fix the callers sending the rejected rows; each 422 answer names the "
                                          "row and column")
    return result
