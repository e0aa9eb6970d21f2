"""The Latency page: p50/p95/p99 per version over a window, estimated from rollups beside the exact figure,
with failed requests and, beside them, the requests refused before any prediction."""


from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from opscore.config import Settings
from opscore.models import registry
from opscore.models.registry import ProductionChange
from opscore.serving import telemetry_queries
from opscore.serving.telemetry_writer import REFUSAL_REASONS
from opscore.store import open_store
from opscore.views import windows
from opscore.views.sources import DEFAULT_SOURCE, TrafficSource, traffic_source
from opscore.views.windows import Window, resolve_window, window_series

# Short names of the refusal reasons, for a chart's legend.
REFUSAL_LABELS = {reason: description.split(" (")[0] for reason, description in REFUSAL_REASONS.items()}
# Above this many raw rows the exact p95 is computed only when asked: it reads every request's row.
EXACT_ROW_LIMIT = 200_000


@dataclass(frozen=True)
class LatencyReport:
    """Latency of one traffic source over a window: series per version, window figures per version,
    exact vs estimated p95, and the requests refused before any prediction, by reason."""

    window: Window
    source: TrafficSource
    version_id: str | None
    series: pd.DataFrame
    per_version: pd.DataFrame  # version, requests, rows, errors, error rate (%), p50/p95/p99/mean (ms)
    estimated: dict
    exact: dict | None
    markers: list[ProductionChange]
    refused_series: pd.DataFrame  # bucket_start, reason, count
    refused: pd.DataFrame  # reason, description, requests: totals over the window, most first

    @property
    def refused_total(self) -> int:
        return int(self.refused["requests"].sum())

    @property
    def exact_needs_request(self) -> bool:
        """True when the window holds too many raw rows to read on every page view."""
        return self.exact is None and self.estimated["count"] > 0


def latency_report(settings: Settings, window_label: str, version_id: str | None = None,
                   exact: bool = False, source: str = DEFAULT_SOURCE) -> LatencyReport:
    """p50/p95/p99, throughput and errors per version of ``source`` from rollups; exact p95 from raw rows
    when cheap (or when ``exact`` is asked for); refused requests by reason."""
    store = open_store(settings)
    traffic = traffic_source(source)
    window = resolve_window(settings, window_label, source=source)
    series = window_series(settings, window, version_id, source=source)
    estimated, by_version = telemetry_queries.window_percentiles_by_version(
        store, window.start, window.end, version_id=version_id, source=source)
    rows = []
    for version, figures in by_version.items():
        rows.append({"version": version, "requests": figures["count"], "rows": figures["rows"],
                     "errors": figures["errors"],
                     "error rate (%)": 100 * figures["errors"] / figures["count"] if figures["count"] else None,
                     "p50 (ms)": figures["p50_ms"], "p95 (ms)": figures["p95_ms"], "p99 (ms)": figures["p99_ms"],
                     "mean (ms)": figures["mean_ms"]})
    exact_figures = None
    if estimated["count"] and (exact or estimated["rows"] <= EXACT_ROW_LIMIT):
        exact_figures = telemetry_queries.exact_percentiles(store, window.start, window.end, version_id=version_id,
                                                            source=source)
    refused_series = windows.refusal_series(settings, window, version_id, source=source)
    totals = refused_series.groupby("reason")["count"].sum().sort_values(ascending=False)
    return LatencyReport(
        window=window,
        source=traffic,
        version_id=version_id,
        series=series,
        per_version=pd.DataFrame.from_records(
            rows, columns=["version", "requests", "rows", "errors", "error rate (%)", "p50 (ms)", "p95 (ms)",
                           "p99 (ms)", "mean (ms)"]),
        estimated=estimated,
        exact=exact_figures,
        markers=registry.production_changes(open_store(settings)),
        refused_series=refused_series,
        refused=pd.DataFrame({"reason": totals.index.astype(str),
                              "description": [REFUSAL_REASONS.get(r, r) for r in totals.index],
                              "requests": totals.to_numpy(dtype="int64")}),
    )


