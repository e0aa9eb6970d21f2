"""The maturity scorecard: how far each operational area of this workspace has come, from what it really does.

Six areas, four levels (basic, standard, advanced, expert). Each level is earned by evidence read
from the workspace, never by a setting alone: production moves and rollbacks in the ledger,
retrained versions and what they learned from, logged and labelled traffic, backups taken and
restores verified, and the rows of the tables other capabilities keep (alert channels, schedules,
maintenance tasks, rollouts, triggers). An area whose capability this opscore does not have yet
scores basic, and its next step says so instead of pretending a configuration would help.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Table, func, select

from opscore.config import Settings
from opscore.store import backups, ledger, metadata, open_store, predictions, tasks, versions

LEVELS = ("basic", "standard", "advanced", "expert")
AREAS = ("monitoring", "alerting", "deployment", "retraining", "incident response", "data management")
DAY = 86_400.0


@dataclass(frozen=True)
class AreaScore:
    """One area's level, the evidence that earned it, and the step that would earn the next one."""

    area: str
    level: str
    evidence: list[str]
    next_step: str

    @property
    def score(self) -> int:
        return LEVELS.index(self.level) + 1


@dataclass(frozen=True)
class MaturityScorecard:
    computed_at: float
    areas: list[AreaScore] = field(default_factory=list)

    def to_df(self) -> pd.DataFrame:
        """One row per area: area, level, score (1-4), evidence, next_step."""
        return pd.DataFrame([{"area": a.area, "level": a.level, "score": a.score, "evidence": "; ".join(a.evidence),
                              "next_step": a.next_step} for a in self.areas],
                            columns=["area", "level", "score", "evidence", "next_step"])

    def to_dict(self) -> dict[str, Any]:
        return {"computed_at": self.computed_at,
                "areas": {a.area: {"level": a.level, "score": a.score, "evidence": a.evidence,
                                   "next_step": a.next_step} for a in self.areas}}

    def level_of(self, area: str) -> str:
        return next(a.level for a in self.areas if a.area == area)


def _tables_named(*words: str) -> list[Table]:
    """The store's tables whose names contain one of ``words`` (another capability's tables, if it exists)."""
    return [t for name, t in sorted(metadata.tables.items()) if any(w in name for w in words)]


@dataclass
class _Facts:
    """What the scorecard reads from the workspace, in one pass over small aggregate queries."""

    actions: dict[str, int]
    linked_rollbacks: int
    retrained: int
    retrained_on_traffic: int
    recent_predictions: int
    recent_labels: int
    backups: int
    verified_recently: int
    scheduled_backups: int
    rows: dict[str, int]
    scheduled_health_runs: int = 0

    def rows_in(self, *words: str) -> tuple[bool, int, list[str]]:
        """Whether tables named with ``words`` exist, their rows, and their names."""
        names = [name for name in self.rows if any(w in name for w in words)]
        return bool(names), sum(self.rows[n] for n in names), names


def _facts(settings: Settings, now: float) -> _Facts:
    store = open_store(settings)
    count = func.count()
    with store.read() as conn:
        actions = dict(conn.execute(select(ledger.c.action, count).where(ledger.c.alias == "production")
                                    .group_by(ledger.c.action)).all())
        linked = conn.execute(select(count).select_from(ledger).where(
            ledger.c.action == "rollback", (ledger.c.alert_id.is_not(None)) | (ledger.c.task_id.is_not(None)))).scalar_one()
        retrained = conn.execute(select(count).select_from(versions).where(versions.c.created_by == "retrain")).scalar_one()
        on_traffic = conn.execute(select(count).select_from(versions).where(
            versions.c.created_by == "retrain", versions.c.notes.like("%labelled production traffic%"))).scalar_one()
        recent = conn.execute(select(count).select_from(predictions).where(predictions.c.at >= now - 7 * DAY)).scalar_one()
        labels = conn.execute(select(count).select_from(predictions).where(
            predictions.c.labelled_at >= now - 30 * DAY)).scalar_one()
        taken = conn.execute(select(count).select_from(backups)).scalar_one()
        verified = conn.execute(select(count).select_from(backups).where(
            backups.c.verified_at >= now - 30 * DAY)).scalar_one()
        scheduled = conn.execute(select(count).select_from(backups).where(
            backups.c.actor.like("system:%"), backups.c.verified_at >= now - 8 * DAY)).scalar_one()
        rows = {t.name: int(conn.execute(select(count).select_from(t)).scalar_one())
                for t in _tables_named("alert", "channel", "schedule", "task", "deployment", "rollout", "trigger")}
        # The health checks a schedule queued and a worker ran to the end this last week (not edits or skips).
        health_runs = conn.execute(select(count).select_from(tasks).where(
            tasks.c.procedure == "health_checks", tasks.c.created_by.like("schedule:%"), tasks.c.status == "success",
            tasks.c.updated_at >= now - 8 * DAY)).scalar_one()
    return _Facts({k: int(v) for k, v in actions.items()}, int(linked), int(retrained), int(on_traffic), int(recent),
                  int(labels), int(taken), int(verified), int(scheduled), rows, int(health_runs))


def _climb(area: str, steps: list[tuple[bool, str, str]]) -> AreaScore:
    """The highest level whose steps all hold; ``steps`` give (holds, evidence, how to earn it) per level above basic."""
    level, evidence = 0, []
    for holds, seen, how in steps:
        if not holds:
            return AreaScore(area, LEVELS[level], evidence or ["nothing yet"], how)
        level += 1
        evidence.append(seen)
    return AreaScore(area, LEVELS[level], evidence, "keep it up: this area is at the top level")


def _missing(area: str, capability: str) -> AreaScore:
    return AreaScore(area, "basic", [f"{capability} does not exist in this opscore yet"],
                     f"{capability} comes with a later opscore; until then {area} is manual")


def maturity_scorecard(settings: Settings, now: float | None = None) -> MaturityScorecard:
    """Score each area of this workspace from what it really does."""
    now = time.time() if now is None else now
    f = _facts(settings, now)
    has_health = importlib.util.find_spec("opscore.monitoring.health") is not None
    has_schedules, schedule_rows, _ = f.rows_in("schedule")
    has_alerts, alert_rows, alert_tables = f.rows_in("alert")
    has_channels, channel_rows, _ = f.rows_in("channel")
    has_rollouts, rollout_rows, _ = f.rows_in("deployment", "rollout")
    has_triggers, trigger_rows, _ = f.rows_in("trigger")
    has_tasks, task_rows, _ = f.rows_in("task")
    promotions, rollbacks = f.actions.get("promote", 0), f.actions.get("rollback", 0)
    areas = [
        _climb("monitoring", [
            (f.recent_predictions > 0, f"{f.recent_predictions:,} predictions logged in the last 7 days",
             "serve traffic through opscore serve so every prediction and its latency is logged"),
            (f.recent_labels > 0, f"{f.recent_labels:,} labels joined in the last 30 days",
             "send ground truth to POST /feedback so accuracy is measured, not only estimated"),
            (has_health and f.scheduled_health_runs > 0,
             f"the health checks ran on a schedule {f.scheduled_health_runs} time(s) in the last 8 days",
             "run the daily maintenance on a schedule (opscore worker)" if has_health else
             "the health checks do not exist in this opscore yet; drift and accuracy are run by hand until they do"),
        ]),
        _missing("alerting", "alerting") if not has_alerts else _climb("alerting", [
            (alert_rows > 0, f"alert rules or alerts recorded ({', '.join(alert_tables)})", "define an alert rule"),
            (has_channels and channel_rows > 0, f"{channel_rows} alert channel(s) configured",
             "configure a channel (Slack, PagerDuty) so alerts reach a person"),
            (f.linked_rollbacks > 0, "a rollback was linked to an alert", "link rollbacks to the alert that caused them"),
        ]),
        _climb("deployment", [
            (promotions >= 1, f"{promotions} pre-flight-checked promotion(s) in the ledger",
             "promote a new version through the pre-flight check (opscore promote)"),
            (rollbacks >= 1, f"{rollbacks} rollback(s) in the ledger", "practise a rollback (opscore rollback) before you need one"),
            (has_rollouts and rollout_rows > 0, f"{rollout_rows} canary or shadow rollout(s)",
             "roll the next version out as a canary" if has_rollouts else
             "canary and shadow rollouts do not exist in this opscore yet: a promotion moves all traffic at once"),
        ]),
        _climb("retraining", [
            (f.retrained > 0, f"{f.retrained} retrained version(s)", "retrain a candidate from production (Retrain page)"),
            (f.retrained_on_traffic > 0, f"{f.retrained_on_traffic} retrained on labelled production traffic",
             "retrain on labelled production traffic, not only the original data"),
            (has_triggers and trigger_rows > 0, "retraining starts automatically from a trigger",
             "set a trigger to retrain on drift or an accuracy drop" if has_triggers else
             "automatic retraining does not exist in this opscore yet; retraining is started by an operator"),
        ]),
        _climb("incident response", [
            (rollbacks > 0, f"{rollbacks} rollback(s) with a reason in the ledger", "record incidents as rollbacks with a reason"),
            (f.linked_rollbacks > 0, f"{f.linked_rollbacks} rollback(s) linked to an alert or a task",
             "link each rollback to the alert or maintenance task that caused it"),
            (has_tasks and task_rows > 0, "findings open corrective maintenance tasks",
             "run maintenance through the queue so findings open corrective tasks" if has_tasks else
             "the maintenance queue does not exist in this opscore yet; findings are followed up by hand"),
        ]),
        _climb("data management", [
            (f.backups > 0, f"{f.backups} backup(s) taken", "take a backup: opscore backup --to DIR"),
            (f.verified_recently > 0 and settings.retention_days > 0,
             f"a backup verified by a restore in the last 30 days; raw rows kept {settings.retention_days:g} days",
             "verify a backup by restoring it (the weekly maintenance does) and keep a retention"),
            (f.scheduled_backups > 0, "the weekly maintenance took and verified a backup in the last 8 days",
             "let the weekly maintenance take and verify backups on its schedule"),
        ]),
    ]
    return MaturityScorecard(now, areas)
