"""What each dashboard page shows, assembled by one call per page so the pages stay thin.

The dashboard renders these objects and nothing else: the registry, the ledger and the telemetry
rollups are read here, never in ``pages/``. Figures over a time window read the per-minute rollups
only, so a page costs the same with a thousand or a million logged predictions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from opscore.config import Settings
from opscore.exceptions import BadInputError
from opscore.models import registry
from opscore.models.registry import LedgerEntry, VersionInfo
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views.plots import ProductionChange

# Time windows an operator picks from; None means "since the first logged prediction".
WINDOWS: dict[str, float | None] = {
    "Last 15 minutes": 15 * 60,
    "Last hour": 3600,
    "Last 6 hours": 6 * 3600,
    "Last 24 hours": 24 * 3600,
    "Last 7 days": 7 * 24 * 3600,
    "All time": None,
}
DEFAULT_WINDOW = "Last 24 hours"
# About this many points per chart, whatever the window; rollups are per minute, so never finer.
POINTS_PER_CHART = 120


def when(epoch: float | None, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """An epoch time as operators read it in tables: UTC, to the second unless ``fmt`` says otherwise."""
    if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime(fmt)


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable (45 s, 12 min, 3.5 h, 2.1 d)."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass(frozen=True)
class Window:
    """A time range [start, end) in epoch seconds, with the bucket size its charts use."""

    label: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 60.0)

    @property
    def step_seconds(self) -> int:
        raw = self.seconds / POINTS_PER_CHART
        for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
            if raw <= step:
                return step
        return 86400


def resolve_window(settings: Settings, label: str, now: float | None = None) -> Window:
    """The window an operator picked, ending now; "All time" starts at the first logged request."""
    if label not in WINDOWS:
        raise BadInputError(f"unknown time window {label!r}; choose one of: {', '.join(WINDOWS)}")
    # Whole minutes, so the exact figures (raw rows) and the estimates (minute rollups) cover the same requests.
    end = math.ceil((time.time() if now is None else now) / 60) * 60
    length = WINDOWS[label]
    if length is not None:
        return Window(label, end - length, end)
    summary = telemetry_queries.version_latency_summary(open_store(settings))
    first = float(summary["first_at"].min()) if not summary.empty else end - 3600
    return Window(label, math.floor(first / 60) * 60, end)


def window_series(settings: Settings, window: Window, version_id: str | None = None,
                  now: float | None = None) -> pd.DataFrame:
    """Per-step traffic and latency per version over ``window``, from the rollups.

    Steps without requests are filled in (zero requests, no latency), so a quiet spell reads as zero
    traffic rather than a line drawn across it. Requests per second divide by the part of each step
    the window covers, so the step still in progress (and one cut by the window's start) does not
    read as a drop in traffic.
    """
    step = window.step_seconds
    series = telemetry_queries.latency_series(open_store(settings), window.start, window.end, version_id=version_id,
                                      step_seconds=step)
    if series.empty:
        return series
    grid = pd.MultiIndex.from_product(
        [range(int(window.start // step * step), int(window.end), step), sorted(series["version_id"].unique())],
        names=["bucket_start", "version_id"],
    )
    series = series.set_index(["bucket_start", "version_id"]).reindex(grid).reset_index()
    series[["count", "errors"]] = series[["count", "errors"]].fillna(0).astype("int64")
    now = time.time() if now is None else now
    starts = series["bucket_start"].astype(float)
    covered = (starts + window.step_seconds).clip(upper=now) - starts.clip(lower=window.start)
    series["rps"] = series["count"] / covered.clip(lower=1.0)
    return series


def production_changes(settings: Settings) -> list[ProductionChange]:
    """Every production move (for chart markers), oldest first."""
    entries = registry.ledger_entries(open_store(settings), alias="production", newest_first=False)
    return [ProductionChange(e.at, e.to_version, e.action) for e in entries if e.to_version]


# --- Overview -----------------------------------------------------------------------------------

# Fewer requests than this in the previous window make a change against it noise, not news.
MIN_COMPARABLE_REQUESTS = 100


@dataclass(frozen=True)
class Overview:
    """Health at a glance over a window, with the previous window of the same length for comparison."""

    window: Window
    versions: int
    production: VersionInfo | None
    candidate: VersionInfo | None
    last_retrain: VersionInfo | None
    requests: int
    errors: int
    p95_ms: float | None
    previous_requests: int
    previous_p95_ms: float | None
    previous_error_rate: float | None
    series: pd.DataFrame
    markers: list[ProductionChange]
    recent_moves: list[LedgerEntry]

    @property
    def requests_per_minute(self) -> float:
        return self.requests / (self.window.seconds / 60)

    @property
    def previous_requests_per_minute(self) -> float:
        return self.previous_requests / (self.window.seconds / 60)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def comparable(self) -> bool:
        """Whether the previous window had enough traffic for a change against it to mean something."""
        return bool(self.requests) and self.previous_requests >= max(MIN_COMPARABLE_REQUESTS, 0.1 * self.requests)

    def changes(self) -> dict[str, float | None]:
        """Change against the previous window: requests per minute, p95 (ms), error rate (percentage points)."""
        if not self.comparable:
            return {"requests_per_minute": None, "p95_ms": None, "error_rate": None}
        p95 = self.p95_ms - self.previous_p95_ms if self.p95_ms is not None and self.previous_p95_ms is not None else None
        rate = (self.error_rate or 0.0) - (self.previous_error_rate or 0.0)
        return {"requests_per_minute": self.requests_per_minute - self.previous_requests_per_minute, "p95_ms": p95,
                "error_rate": rate * 100}


def overview(settings: Settings, window_label: str, version_id: str | None = None) -> Overview:
    """Production and candidate, traffic, p95 and error rate over the window, and the last retrain."""
    store = open_store(settings)
    window = resolve_window(settings, window_label)
    found = registry.list_versions(store)
    by_id = {v.version_id: v for v in found}
    current = telemetry_queries.window_percentiles(store, window.start, window.end, version_id=version_id)
    before = telemetry_queries.window_percentiles(store, window.start - window.seconds, window.start, version_id=version_id)
    retrained = [v for v in found if v.created_by == "retrain" or v.parent_version]
    return Overview(
        window=window,
        versions=len(found),
        production=by_id.get(registry.alias_target(store, "production") or ""),
        candidate=by_id.get(registry.alias_target(store, "candidate") or ""),
        last_retrain=max(retrained, key=lambda v: v.created_at) if retrained else None,
        requests=current["count"],
        errors=current["errors"],
        p95_ms=current["p95_ms"],
        previous_requests=before["count"],
        previous_p95_ms=before["p95_ms"],
        previous_error_rate=before["errors"] / before["count"] if before["count"] else None,
        series=window_series(settings, window, version_id),
        markers=production_changes(settings),
        recent_moves=registry.ledger_entries(store, limit=5),
    )


# --- Latency ------------------------------------------------------------------------------------

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
        markers=production_changes(settings),
    )


# --- Live feed ----------------------------------------------------------------------------------

LIVE_MINUTES = 30


@dataclass(frozen=True)
class LiveFeed:
    """The newest predictions and the traffic of the last half hour, for a view that refreshes itself."""

    stats: dict
    recent: pd.DataFrame
    series: pd.DataFrame
    window_size: int


def live_feed(settings: Settings, limit: int = 50) -> LiveFeed:
    """Figures over the last ``settings.live_window`` predictions, the newest ``limit`` rows, and
    requests per minute for the last half hour (from rollups)."""
    store = open_store(settings)
    now = time.time()
    recent = telemetry_queries.recent_predictions(store, limit=limit)
    table = pd.DataFrame({
        "time (UTC)": [when(t, "%H:%M:%S") for t in recent["at"]],
        "version": recent["version_id"],
        "source": recent["source"],
        "latency (ms)": recent["latency_ms"],
        "status": recent["status"],
        "prediction": [_cell(v) for v in recent["prediction"]],
        "probability": recent["probability"],
        "label": [_cell(v) for v in recent["label"]],
    })
    end = math.ceil(now / 60) * 60
    return LiveFeed(
        stats=telemetry_queries.live_window(store, settings.live_window),
        recent=table,
        series=window_series(settings, Window("live", end - LIVE_MINUTES * 60, end), now=now),
        window_size=settings.live_window,
    )


def _cell(value: object) -> str:
    """A logged prediction or label as text: empty when absent, 1 rather than 1.0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
