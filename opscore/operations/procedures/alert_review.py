"""Daily review of critical alerts: what is open and unacknowledged, which rules flap, how fast people answer.

Read from the alert timeline (``alerts`` and ``alert_events``), so it says what really happened: a
critical alert firing with nobody's acknowledgement is a critical finding (a corrective task follows
it up until someone acknowledges or it resolves), a rule that changed state ``alert_flapping_changes``
times or more in the window is flapping (an adaptive task: its ``for:``, ``keep_firing_for`` or
threshold wants tuning), and a mean time to acknowledge beyond ``alert_escalate_after_seconds`` means
alerts escalate before anyone looks. Flapping is counted for every rule, since a flapping warning
buries the critical ones; the rest is about critical alerts.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from opscore.config import Settings
from opscore.operations.alerts import OPEN_STATES, STATES
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure
from opscore.store import alert_events, alerts, open_store

DAY = 86_400.0


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _labels(raw: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(json.loads(raw).items())) or "no labels"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def review(settings: Settings, start: float, end: float) -> dict[str, Any]:
    """The figures of the review over [start, end): open critical alerts, state changes per rule, MTTA, MTTR."""
    with open_store(settings).read() as conn:
        open_rows = conn.execute(select(alerts).where(alerts.c.severity == "critical",
                                                      alerts.c.state.in_(OPEN_STATES)).order_by(alerts.c.id)).all()
        changes = conn.execute(
            select(alerts.c.rule, alerts.c.severity, func.count())
            .join(alert_events, alert_events.c.alert_id == alerts.c.id)
            .where(alert_events.c.kind.in_(STATES), alert_events.c.at >= start, alert_events.c.at < end)
            .group_by(alerts.c.rule, alerts.c.severity)).all()
        acknowledged = conn.execute(select(alerts.c.acknowledged_at - func.coalesce(alerts.c.fired_at, alerts.c.started_at))
                                    .where(alerts.c.severity == "critical", alerts.c.acknowledged_at >= start,
                                           alerts.c.acknowledged_at < end)).scalars().all()
        resolved = conn.execute(select(alerts.c.resolved_at - alerts.c.fired_at).where(
            alerts.c.severity == "critical", alerts.c.fired_at.is_not(None), alerts.c.resolved_at >= start,
            alerts.c.resolved_at < end)).scalars().all()
    per_rule = sorted(({"rule": rule, "severity": severity, "changes": int(n)} for rule, severity, n in changes),
                      key=lambda r: (-r["changes"], r["rule"], r["severity"]))
    return {
        "window": {"start": start, "end": end},
        "critical_open": [{"id": r.id, "rule": r.rule, "state": r.state, "labels": json.loads(r.labels),
                           "summary": r.summary, "fired_at": r.fired_at, "acknowledged_by": r.acknowledged_by,
                           "acknowledged_at": r.acknowledged_at} for r in open_rows],
        "critical_unacknowledged": [r.id for r in open_rows if r.state == "firing" and r.acknowledged_at is None],
        "state_changes": per_rule,
        "flapping": [r for r in per_rule if r["changes"] >= settings.alert_flapping_changes],
        "mean_time_to_acknowledge_seconds": _mean([float(v) for v in acknowledged]),
        "acknowledged_alerts": len(acknowledged),
        "mean_time_to_resolve_seconds": _mean([float(v) for v in resolved]),
        "resolved_alerts": len(resolved),
    }


@procedure("critical_alert_review", title="Review of critical alerts: open, unacknowledged, flapping, MTTA and MTTR",
           maintenance_set="daily", estimated_seconds=2)
def critical_alert_review(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    end = float(params.get("now", time.time()))
    window = float(params.get("window", DAY))
    checkpoint("reading the alert timeline", 0.0)
    figures = review(settings, end - window, end)
    findings: list[Finding] = []
    for alert in figures["critical_open"]:
        where = f"critical alert #{alert['id']} {alert['rule']} ({_labels(json.dumps(alert['labels']))})"
        if alert["id"] in figures["critical_unacknowledged"]:
            findings.append(Finding(f"{where} has fired since {_iso(alert['fired_at'])} and nobody acknowledged it",
                                    "critical", follow_up="corrective"))
        elif alert["state"] == "firing":
            findings.append(Finding(f"{where}, acknowledged by {alert['acknowledged_by']}, still fires since "
                                    f"{_iso(alert['fired_at'])}", "high"))
    for rule in figures["flapping"]:
        findings.append(Finding(
            f"rule {rule['rule']} ({rule['severity']}) is flapping: {settings.alert_flapping_changes} or more state "
            f"changes within {window / 3600:g} h; lengthen its for: or keep_firing_for, or move its threshold",
            "medium", follow_up="adaptive"))
    mtta = figures["mean_time_to_acknowledge_seconds"]
    escalate_after = settings.alert_escalate_after_seconds
    if mtta is not None and escalate_after > 0 and mtta > escalate_after:
        findings.append(Finding(f"critical alerts waited {mtta / 60:.1f} min on average for an acknowledgement, "
                                f"longer than the {escalate_after / 60:g} min after which they escalate", "medium"))
    checkpoint("done", 1.0)
    recommendations = [] if findings else ["no critical alert is waiting and no rule flaps; nothing to do"]
    return ProcedureResult(figures, findings, recommendations)
