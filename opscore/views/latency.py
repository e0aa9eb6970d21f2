"""The Latency page: p50/p95/p99 per version over a window, estimated from rollups beside the exact figure."""


from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from opscore.config import Settings
from opscore.models import registry
from opscore.models.registry import ProductionChange
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views.windows import Window, resolve_window, window_series

# Above this many raw rows the exact p95 is computed only when asked: it reads every row.
EXACT_ROW_LIMIT = 200_000


@dataclass(frozen=True)
class LatencyReport:
    """Latency over a window: series per version, window figures per version, exact vs estimated p95."""

    window: Window
    version_id: str | None
    series: pd.DataFrame
    per_version: pd.DataFrame  # version, requests, errors, error rate (%), p50/p95/p99 (ms)
    estimated: dict
    exact: dict | None
    markers: list[ProductionChange]

    @property
    def exact_needs_request(self) -> bool:
        """True when the window holds too many raw rows to read on every page view."""
        return self.exact is None and self.estimated["count"] > 0


def latency_report(settings: Settings, window_label: str, version_id: str | None = None,
                   exact: bool = False) -> LatencyReport:
    """p50/p95/p99, throughput and errors per version from rollups; exact p95 from raw rows when cheap
    (or when ``exact`` is asked for)."""
    store = open_store(settings)
    window = resolve_window(settings, window_label)
    series = window_series(settings, window, version_id)
    estimated = telemetry_queries.window_percentiles(store, window.start, window.end, version_id=version_id)
    rows = []
    for version in sorted(series["version_id"].unique()) if not series.empty else []:
        figures = telemetry_queries.window_percentiles(store, window.start, window.end, version_id=version)
        rows.append({"version": version, "requests": figures["count"], "errors": figures["errors"],
                     "error rate (%)": 100 * figures["errors"] / figures["count"] if figures["count"] else None,
                     "p50 (ms)": figures["p50_ms"], "p95 (ms)": figures["p95_ms"], "p99 (ms)": figures["p99_ms"],
                     "mean (ms)": figures["mean_ms"]})
    exact_figures = None
    if estimated["count"] and (exact or estimated["count"] <= EXACT_ROW_LIMIT):
        exact_figures = telemetry_queries.exact_percentiles(store, window.start, window.end, version_id=version_id)
    return LatencyReport(
        window=window,
        version_id=version_id,
        series=series,
        per_version=pd.DataFrame.from_records(
            rows, columns=["version", "requests", "errors", "error rate (%)", "p50 (ms)", "p95 (ms)", "p99 (ms)",
                           "mean (ms)"]),
        estimated=estimated,
        exact=exact_figures,
        markers=registry.production_changes(open_store(settings)),
    )


