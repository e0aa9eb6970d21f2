"""Triggers: a firing alert of a rule that calls for work opens one maintenance task for it.

The original design's triggers are drift beyond its threshold, average latency over a second and an
accuracy drop (``trigger_rules``). Each firing alert of those rules is one cause and gets exactly one
task, however many times it is evaluated: the task is created with ``dedup_key=f"alert:{id}"`` and
its id is written on the alert's timeline in the same transaction, and an alert whose timeline names
a task never opens another. Where ``alert_auto_retrain`` is on, the task of a drift or accuracy alert
runs ``retrain_candidate`` (a candidate from the alerting version's training data plus recent
labelled traffic, through the same ``retrain`` as the Retrain page, never promoted: promotion stays
an operator's move); otherwise, and while the rule is
cooling down (``retrain_cooldown_seconds`` after its last trigger retrain, so a flapping rule cannot
retrain in a loop), and while a retrain of the same version is already queued (drift and accuracy
often fire together), it runs ``investigate_alert``, which gathers the evidence for whoever picks it up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from opscore.config import Settings
from opscore.operations.alert_rules import configured_rules
from opscore.operations.tasks import OPEN, Cause, Task, create_task
from opscore.store import alert_events, alerts, open_store, tasks

TASK_EVENT = "task_opened"
RETRAIN = "retrain_candidate"
INVESTIGATE = "investigate_alert"
# Retraining answers a change in the data or in what the model gets right, not a slow server.
RETRAINS_ON = ("dataset_drift_share", "accuracy_drop")
_PRIORITY = {"critical": "high", "warning": "medium"}


@dataclass(frozen=True)
class Triggered:
    """One task a trigger opened: for which alert, running what, and why not a retrain when it is not."""

    alert_id: int
    task: Task
    reason: str


def _signal_of(settings: Settings, rule_name: str, severity: str) -> str | None:
    return next((r.signal for r in configured_rules(settings) if r.name == rule_name and r.severity == severity), None)


def _last_retrain(conn: Connection, rule: str) -> float | None:
    """When a trigger last opened a retrain for ``rule`` (whatever became of it)."""
    rows = conn.execute(select(tasks.c.created_at, tasks.c.params).where(
        tasks.c.procedure == RETRAIN, tasks.c.created_by.startswith("alert:"))).all()
    times = [r.created_at for r in rows if json.loads(r.params).get("rule") == rule]
    return max(times, default=None)


def open_tasks(settings: Settings, *, now: float | None = None) -> list[Triggered]:
    """Open the task of every firing trigger alert that has none yet; returns the ones opened now."""
    now = time.time() if now is None else now
    wanted = set(settings.trigger_rules)
    if not wanted:
        return []
    store = open_store(settings)
    with store.read() as conn:
        linked = select(alert_events.c.id).where(alert_events.c.alert_id == alerts.c.id,
                                                 alert_events.c.kind == TASK_EVENT).exists()
        firing = conn.execute(select(alerts).where(alerts.c.state == "firing", alerts.c.rule.in_(wanted), ~linked)
                              .order_by(alerts.c.id)).all()
    opened = []
    for row in firing:
        signal = _signal_of(settings, row.rule, row.severity)
        with store.write() as conn:
            # Read again under the write lock: another evaluator may have linked it a moment ago.
            if conn.execute(select(alert_events.c.id).where(alert_events.c.alert_id == row.id,
                                                            alert_events.c.kind == TASK_EVENT)).first():
                continue
            labels = json.loads(row.labels)
            procedure, reason = _choose(settings, conn, row, signal, labels.get("version"), now)
            params: dict[str, Any] = {"alert_id": row.id, "rule": row.rule}
            if procedure == RETRAIN and labels.get("version"):
                params["base_version"] = labels["version"]
            task = create_task(
                settings, procedure=procedure, params=params,
                title=f"{'Retrain a candidate' if procedure == RETRAIN else 'Investigate'}: {row.summary}"[:300],
                type="adaptive" if procedure == RETRAIN else "corrective",
                priority=_PRIORITY.get(row.severity, "medium"), created_by=f"alert:{row.id}",
                cause=Cause("alert", str(row.id), row.summary), dedup_key=f"alert:{row.id}", now=now, conn=conn)
            conn.execute(insert(alert_events).values(
                alert_id=row.id, at=now, kind=TASK_EVENT, actor="system:triggers",
                detail=f"task {task.id} ({procedure}): {reason}"))  # the same transaction as the task
        opened.append(Triggered(row.id, task, reason))
    return opened


def _choose(settings: Settings, conn: Connection, row: Any, signal: str | None, version: str | None,
            now: float) -> tuple[str, str]:
    if signal not in RETRAINS_ON:
        return INVESTIGATE, f"{row.rule} calls for an investigation, not a retrain"
    if not settings.alert_auto_retrain:
        return INVESTIGATE, "automatic retraining is off (alert_auto_retrain); retrain from the Retrain page if it helps"
    queued = conn.execute(select(tasks.c.id, tasks.c.params).where(tasks.c.procedure == RETRAIN,
                                                                   tasks.c.status.in_(OPEN))).all()
    for task_id, params in queued:
        if json.loads(params).get("base_version") == version:  # drift and accuracy often fire together
            return INVESTIGATE, f"a retrain of {version} is already queued (task {task_id})"
    last = _last_retrain(conn, row.rule)
    if last is not None and now - last < settings.retrain_cooldown_seconds:
        until = last + settings.retrain_cooldown_seconds
        return INVESTIGATE, (f"{row.rule} opened a retrain {(now - last) / 60:.0f} min ago; no other before "
                             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(until))} (retrain_cooldown_seconds)")
    return RETRAIN, "automatic retraining is on: a candidate from the version's training data plus labelled traffic"
