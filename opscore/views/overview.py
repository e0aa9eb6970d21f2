"""The Overview page: health at a glance over a window, against the previous window of the same length."""


from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from opscore.config import Settings
from opscore.models import registry
from opscore.models.registry import LedgerEntry, ProductionChange, VersionInfo
from opscore.monitoring.health import health_report
from opscore.monitoring.health.infrastructure import HostReader, read_host
from opscore.operations import alerts
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views.sources import DEFAULT_SOURCE, TrafficSource, traffic_source
from opscore.views.windows import Window, resolve_window, window_series

# Fewer requests than this in the previous window make a change against it noise, not news.
MIN_COMPARABLE_REQUESTS = 100


@dataclass(frozen=True)
class Overview:
    """Health at a glance over one traffic source and a window, with the previous window of the same
    length for comparison. ``requests`` count one per request of the source (for scoring sources, one
    per row), ``rows`` the rows they carried, ``refused`` the requests refused before any prediction."""

    window: Window
    source: TrafficSource
    versions: int
    production: VersionInfo | None
    candidate: VersionInfo | None
    last_retrain: VersionInfo | None
    requests: int
    errors: int
    rows: int
    refused: int
    p95_ms: float | None
    previous_requests: int
    previous_p95_ms: float | None
    previous_error_rate: float | None
    series: pd.DataFrame
    markers: list[ProductionChange]
    recent_moves: list[LedgerEntry]
    firing_alerts: list[dict]

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


def overview(settings: Settings, window_label: str, version_id: str | None = None,
             source: str = DEFAULT_SOURCE) -> Overview:
    """Production and candidate, traffic, p95 and error rate of ``source`` over the window, and the last retrain."""
    store = open_store(settings)
    traffic = traffic_source(source)
    window = resolve_window(settings, window_label, source=source)
    found = registry.list_versions(store)
    by_id = {v.version_id: v for v in found}
    current = telemetry_queries.window_percentiles(store, window.start, window.end, version_id=version_id,
                                                   source=source)
    before = telemetry_queries.window_percentiles(store, window.start - window.seconds, window.start,
                                                  version_id=version_id, source=source)
    refused = telemetry_queries.refusal_series(store, window.start, window.end, version_id=version_id, source=source)
    retrained = [v for v in found if v.created_by == "retrain" or v.parent_version]
    return Overview(
        window=window,
        source=traffic,
        versions=len(found),
        production=by_id.get(registry.alias_target(store, "production") or ""),
        candidate=by_id.get(registry.alias_target(store, "candidate") or ""),
        last_retrain=max(retrained, key=lambda v: v.created_at) if retrained else None,
        requests=current["count"],
        errors=current["errors"],
        rows=current["rows"],
        refused=int(refused["count"].sum()),
        p95_ms=current["p95_ms"],
        previous_requests=before["count"],
        previous_p95_ms=before["p95_ms"],
        previous_error_rate=before["errors"] / before["count"] if before["count"] else None,
        series=window_series(settings, window, version_id, source=source),
        markers=registry.production_changes(open_store(settings)),
        recent_moves=registry.ledger_entries(store, limit=5),
        firing_alerts=alerts.list_alerts(settings, state="firing", limit=20),
    )




HEALTH_LABELS = {"performance": "Performance", "data_quality": "Data quality", "model_accuracy": "Model accuracy",
                 "infrastructure": "Infrastructure", "cost_efficiency": "Cost efficiency"}
STATUS_ICONS = {"healthy": ":material/check_circle:", "warning": ":material/warning:", "critical": ":material/error:"}


@dataclass(frozen=True)
class HealthTile:
    """One health check as the Overview shows it: its status, its top issue and all of it for the details."""

    name: str
    label: str
    status: str
    top_issue: str
    issues: list[str]
    recommendations: list[str]

    @property
    def icon(self) -> str:
        return STATUS_ICONS[self.status]


@dataclass(frozen=True)
class HealthSection:
    overall: str
    checked_at: float
    tiles: list[HealthTile]


def health_section(settings: Settings, window_seconds: float, now: float | None = None,
                   host: HostReader = read_host) -> HealthSection:
    """The five health checks over the page's window, one tile each, most severe issue first."""
    return health_section_of(health_report(settings, now=now, window=window_seconds, host=host).to_dict())


def health_section_of(report: dict[str, Any]) -> HealthSection:
    """Tiles from a health report's JSON (``HealthReport.to_dict()``), as a maintenance task keeps it too."""
    tiles = [HealthTile(name, HEALTH_LABELS.get(name, name), check["status"],
                        check["issues"][0] if check["issues"] else "no issue found", list(check["issues"]),
                        list(check["recommendations"])) for name, check in report["checks"].items()]
    return HealthSection(report["overall"], float(report["checked_at"]), tiles)
