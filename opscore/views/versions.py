"""Version history as the Versions page shows it: holdout metrics, live behaviour, the ledger, comparisons.

Each version comes with its holdout metrics, who first gave it an alias, and how it behaved while it
served (p95 and error rate from the telemetry rollups). Moves are prepared first (the pre-flight
check runs, nothing changes) and carried out only when an operator confirms with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from opscore.config import Settings
from opscore.data.features import schema_differences
from opscore.exceptions import BadInputError
from opscore.models import registry
from opscore.models.registry import LedgerEntry, VersionInfo
from opscore.models.version_metrics import headline_metrics, metric_label, metrics_side_by_side
from opscore.serving import telemetry_queries
from opscore.serving.telemetry_queries import VERSION_P95_DAYS
from opscore.store import open_store
from opscore.views.formatting import duration, when
from opscore.views.sources import DEFAULT_SOURCE, traffic_source

# Ledger entries the Versions page shows at a time; older ones are a click away.
LEDGER_PAGE = 50


@dataclass(frozen=True)
class VersionRow:
    """One version as the history shows it: registry facts plus how it behaved while it served."""

    info: VersionInfo
    by: str
    requests: int
    errors: int
    p95_ms: float | None
    error_rate: float | None
    production_seconds: float


@dataclass(frozen=True)
class VersionBoard:
    """Everything the Versions page shows: history, who holds which alias, the rollback target, the ledger."""

    rows: list[VersionRow]
    production: str | None
    candidate: str | None
    rollback_target: str | None
    ledger: list[LedgerEntry]  # one page, newest first
    production_since: float | None = None
    older_ledger: int | None = None  # pass back as ``ledger_before`` for the next, older page; None: no more
    # What the live figures cover, said beside them.
    live_scope: str = ""

    def row(self, version_id: str | None) -> VersionRow | None:
        return next((r for r in self.rows if r.info.version_id == version_id), None)

    def history_frame(self) -> pd.DataFrame:
        metric_names = list(dict.fromkeys(m for row in self.rows for m in headline_metrics(row.info)))
        records = []
        for row in self.rows:
            aliases = f" · {', '.join(row.info.aliases)}" if row.info.aliases else ""
            record = {
                "version": row.info.version_id + aliases,
                "created (UTC)": when(row.info.created_at, "%Y-%m-%d %H:%M"),
                "by": row.by,
                "parent": row.info.parent_version or "",
                "rows": row.info.training_rows,
            }
            record.update({metric_label(m): row.info.metrics.get(m) for m in metric_names})
            record.update({
                "requests": row.requests,
                "live p95 (ms)": row.p95_ms,
                "error rate (%)": None if row.error_rate is None else row.error_rate * 100,
                "in production": duration(row.production_seconds) if row.production_seconds else "",
            })
            records.append(record)
        return pd.DataFrame.from_records(records)

    def ledger_frame(self) -> pd.DataFrame:
        return ledger_frame(self.ledger)


def ledger_frame(entries: list[LedgerEntry]) -> pd.DataFrame:
    """Ledger entries as a table: who moved which alias from where to where, when and why."""
    return pd.DataFrame.from_records(
        [
            {"#": e.id, "time": when(e.at), "alias": e.alias, "action": e.action, "from": e.from_version or "—",
             "to": e.to_version or "—", "operator": e.actor, "reason": e.reason}
            for e in entries
        ],
        columns=["#", "time", "alias", "action", "from", "to", "operator", "reason"],
    )


def version_board(settings: Settings, ledger_before: int | None = None, ledger_limit: int | None = None,
                  source: str = DEFAULT_SOURCE) -> VersionBoard:
    """Version history with live p95/error rate per version (of ``source``), aliases, rollback target and a
    ledger page.

    The ledger is read a page at a time (``ledger_limit`` entries older than ``ledger_before``); the
    figures drawn from all of it (who first moved a version, time in production) come from queries
    that return one row per version, so the page costs the same however long the ledger grows.
    """
    store = open_store(settings)
    found = registry.list_versions(store)
    summary = telemetry_queries.version_latency_summary(store, source=source).set_index("version_id")
    limit = ledger_limit or LEDGER_PAGE
    page = registry.ledger_entries(store, limit=limit + 1, before_id=ledger_before)
    first_actor = registry.first_movers(store)
    served = registry.production_seconds(store)
    latest = registry.ledger_entries(store, alias="production", limit=1)
    rows = []
    for info in found:
        live = summary.loc[info.version_id] if info.version_id in summary.index else None
        count = int(live["count"]) if live is not None else 0
        rows.append(
            VersionRow(
                info=info,
                by=first_actor.get(info.version_id, info.created_by),
                requests=count,
                errors=int(live["errors"]) if live is not None else 0,
                p95_ms=float(live["p95_ms"]) if count else None,
                error_rate=float(live["error_rate"]) if count else None,
                production_seconds=served.get(info.version_id, 0.0),
            )
        )
    production = registry.alias_target(store, "production")
    return VersionBoard(
        rows=rows,
        production=production,
        candidate=registry.alias_target(store, "candidate"),
        rollback_target=registry.previous_production(store) if production else None,
        ledger=page[:limit],
        production_since=latest[0].at if latest and latest[0].to_version else None,
        older_ledger=page[limit - 1].id if len(page) > limit else None,
        live_scope=(f"{traffic_source(source).label} traffic ({traffic_source(source).counts}); p95 over each "
                    f"version's last {VERSION_P95_DAYS:g} days with traffic, estimated from rollups"),
    )


@dataclass(frozen=True)
class Comparison:
    """Two versions side by side: holdout metrics, schema differences, live behaviour."""

    left: VersionInfo
    right: VersionInfo
    metrics: pd.DataFrame  # metric, <left>, <right>, change, better
    schema_differences: list[str]
    live: pd.DataFrame  # measure, <left>, <right>


def compare_versions(settings: Settings, left: str, right: str, source: str = DEFAULT_SOURCE) -> Comparison:
    """Holdout metrics, schema differences (left -> right) and live figures (of ``source``) of two versions."""
    if left == right:
        raise BadInputError(f"pick two different versions to compare (both are {left!r})")
    store = open_store(settings)
    a, b = registry.get_version(store, left), registry.get_version(store, right)
    metrics = metrics_side_by_side(a, b)
    summary = telemetry_queries.version_latency_summary(store, source=source).set_index("version_id")
    traffic = traffic_source(source)

    def live(version_id: str, column: str) -> float | None:
        if version_id not in summary.index or not summary.loc[version_id, "count"]:
            return None
        return float(summary.loc[version_id, column])

    measures = {"requests": ("count", "{:,.0f}"), "p95 latency": ("p95_ms", "{:,.1f} ms"),
                "error rate": ("error_rate", "{:.2%}")}
    live_frame = pd.DataFrame({f"live ({traffic.label} traffic)": list(measures)} | {
        version: ["—" if (v := live(version, column)) is None else shape.format(v) for column, shape in measures.values()]
        for version in (left, right)
    })
    return Comparison(a, b, metrics, schema_differences(a.feature_schema, b.feature_schema), live_frame)
