"""Version history as the Versions page shows it, and the alias moves it offers behind a confirmation.

Each version comes with its holdout metrics, who first gave it an alias, and how it behaved while it
served (p95 and error rate from the telemetry rollups). Moves are prepared first (the pre-flight
check runs, nothing changes) and carried out only when an operator confirms with a reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from opscore.config import Settings
from opscore.data.features import schema_differences
from opscore.exceptions import BadInputError, NotFoundError
from opscore.models import registry
from opscore.models.registry import Actor, LedgerEntry, VersionInfo
from opscore.serving import telemetry_queries
from opscore.store import open_store
from opscore.views.console import duration, when

HEADLINE_METRICS = {"classification": ("roc_auc", "accuracy", "f1", "log_loss"), "regression": ("r2", "rmse", "mae")}
METRIC_LABELS = {"roc_auc": "ROC-AUC", "accuracy": "accuracy", "f1": "F1", "log_loss": "log loss", "r2": "R²",
                 "rmse": "RMSE", "mae": "MAE"}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


def headline_metrics(info: VersionInfo) -> list[str]:
    """The holdout metrics worth a column for this version's task, in the order operators read them."""
    preferred = HEADLINE_METRICS.get(info.task, ())
    return [m for m in preferred if m in info.metrics] + [m for m in info.metrics if m not in preferred]


def metrics_side_by_side(left: VersionInfo | None, right: VersionInfo) -> pd.DataFrame:
    """Holdout metrics of two versions: metric, <left>, <right>, change (right - left), better (which one).

    With no ``left`` (nothing to compare with) only ``right``'s column is filled.
    """
    names = list(dict.fromkeys((headline_metrics(left) if left else []) + headline_metrics(right)))
    frame = pd.DataFrame({"metric": [metric_label(m) for m in names],
                          right.version_id: [right.metrics.get(m) for m in names]})
    if left is None or left.version_id == right.version_id:
        return frame
    frame.insert(1, left.version_id, [left.metrics.get(m) for m in names])
    change = frame[right.version_id].astype(float) - frame[left.version_id].astype(float)
    frame["change"] = change
    better = []
    for name, delta in zip(names, change, strict=True):
        if pd.isna(delta) or delta == 0:
            better.append("—")
        else:
            right_wins = delta < 0 if name in LOWER_IS_BETTER else delta > 0
            better.append(right.version_id if right_wins else left.version_id)
    frame["better"] = better
    return frame


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
    ledger: list[LedgerEntry]
    production_since: float | None = None

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


def version_board(settings: Settings) -> VersionBoard:
    """Version history with live p95/error rate per version, aliases, rollback target and the ledger."""
    store = open_store(settings)
    found = registry.list_versions(store)
    summary = telemetry_queries.version_latency_summary(store).set_index("version_id")
    entries = registry.ledger_entries(store)
    first_actor: dict[str, str] = {}
    for entry in reversed(entries):
        if entry.to_version and entry.to_version not in first_actor:
            first_actor[entry.to_version] = entry.actor
    served: dict[str, float] = {}
    now = time.time()
    periods = registry.production_periods(store)
    for version_id, start, end in periods:
        served[version_id] = served.get(version_id, 0.0) + ((end or now) - start)
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
        ledger=entries,
        production_since=periods[-1][1] if periods and periods[-1][2] is None else None,
    )


@dataclass(frozen=True)
class Comparison:
    """Two versions side by side: holdout metrics, schema differences, live behaviour."""

    left: VersionInfo
    right: VersionInfo
    metrics: pd.DataFrame  # metric, <left>, <right>, change, better
    schema_differences: list[str]
    live: pd.DataFrame  # measure, <left>, <right>


def compare_versions(settings: Settings, left: str, right: str) -> Comparison:
    """Holdout metrics, schema differences (left -> right) and live figures of two versions."""
    if left == right:
        raise BadInputError(f"pick two different versions to compare (both are {left!r})")
    store = open_store(settings)
    a, b = registry.get_version(store, left), registry.get_version(store, right)
    metrics = metrics_side_by_side(a, b)
    summary = telemetry_queries.version_latency_summary(store).set_index("version_id")

    def live(version_id: str, column: str) -> float | None:
        if version_id not in summary.index or not summary.loc[version_id, "count"]:
            return None
        return float(summary.loc[version_id, column])

    measures = {"requests": ("count", "{:,.0f}"), "p95 latency": ("p95_ms", "{:,.1f} ms"),
                "error rate": ("error_rate", "{:.2%}")}
    live_frame = pd.DataFrame({"live (all logged traffic)": list(measures)} | {
        version: ["—" if (v := live(version, column)) is None else shape.format(v) for column, shape in measures.values()]
        for version in (left, right)
    })
    return Comparison(a, b, metrics, schema_differences(a.feature_schema, b.feature_schema), live_frame)


# --- Alias moves (rollback, promote, discard) behind a confirmation ---------------------------------

MOVES = ("rollback", "promote", "discard")


@dataclass(frozen=True)
class PendingMove:
    """An alias move an operator asked for and must confirm, with its pre-flight result."""

    action: str
    version_id: str
    from_version: str | None
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)

    @property
    def summary(self) -> str:
        if self.action == "discard":
            return f"Discard candidate {self.version_id} (the version stays in the registry)"
        verb = "Roll back" if self.action == "rollback" else "Promote"
        return f"{verb} production: {self.from_version or '(none)'} → {self.version_id}"


def prepare_move(settings: Settings, action: str, version_id: str) -> PendingMove:
    """Describe a move and run its pre-flight check (checksum, load, predict, schema) without moving."""
    if action not in MOVES:
        raise BadInputError(f"unknown action {action!r}; expected one of {', '.join(MOVES)}")
    store = open_store(settings)
    registry.get_version(store, version_id)
    if action == "discard":
        if registry.alias_target(store, "candidate") != version_id:
            raise NotFoundError(f"{version_id!r} is not the candidate any more; nothing to discard")
        return PendingMove(action, version_id, version_id)
    report = registry.preflight(settings, version_id)
    return PendingMove(action, version_id, registry.alias_target(store, "production"), list(report.checks))


def carry_out(settings: Settings, move: PendingMove, actor: Actor, reason: str) -> LedgerEntry | None:
    """Make a confirmed move; refuses if production moved meanwhile, or without an operator and a reason."""
    actor.require_operator(f"{move.action} of {move.version_id}")
    if not reason.strip():
        raise BadInputError("a reason is required: the ledger records why every alias moved")
    if move.action == "discard":
        return registry.clear_candidate(settings, actor, reason)
    return registry.move_alias(
        settings, move.version_id, actor, reason, action=move.action, expected_from=move.from_version
    )
