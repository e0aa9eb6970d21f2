"""What a trigger's task runs when it does not retrain: the evidence behind an alert, gathered for whoever picks it up.

The alert as it stands, its rule's value now per label set, and for a drift alert the columns that
drifted over the rule's window. A retrain is ``retrain_candidate`` (in ``model_review``), which goes
through :func:`opscore.models.retraining.retrain` like the Retrain page and never promotes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from opscore.config import Settings
from opscore.exceptions import NotFoundError, OpscoreError
from opscore.monitoring.live_drift import live_drift
from opscore.operations.alert_rules import configured_rules
from opscore.operations.alerts import get_alert, rule_readings
from opscore.operations.procedures.registry import (
    Checkpoint,
    Finding,
    ProcedureResult,
    TaskSkipped,
    procedure,
)


@procedure("investigate_alert", title="Gather the evidence behind an alert", task_type="corrective",
           estimated_seconds=5)
def investigate_alert(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    checkpoint("reading the alert", 0.0)
    try:
        alert = get_alert(settings, int(params["alert_id"]))
    except (KeyError, ValueError, NotFoundError) as exc:
        raise TaskSkipped(f"no alert to investigate: {exc}") from None
    now = time.time()
    rule = next((r for r in configured_rules(settings) if r.name == alert["rule"] and r.severity == alert["severity"]),
                None)
    figures: dict[str, Any] = {"alert": {k: alert[k] for k in ("id", "rule", "severity", "state", "labels",
                                                               "summary", "value", "fired_at", "resolved_at")}}
    checkpoint("reading the rule now", 0.4)
    figures["now"] = [r for r in rule_readings(settings, now=now)
                      if r["rule"] == alert["rule"] and r["severity"] == alert["severity"]]
    if rule is not None and rule.signal == "dataset_drift_share":
        checkpoint("reading live drift", 0.7)
        try:
            report = live_drift(settings, now - rule.window_seconds, now, alert["labels"].get("version"))
            figures["drifted_columns"] = report.report.drifted_columns
            figures["drift_rows"] = report.rows
        except OpscoreError as exc:
            figures["drifted_columns"] = f"not measurable now: {exc}"
    findings = []
    recommendations = []
    if alert["state"] == "resolved":
        recommendations.append(f"alert #{alert['id']} resolved; nothing is left to do unless it comes back")
    else:
        findings.append(Finding(f"alert #{alert['id']} still {alert['state']}: {alert['summary']}",
                                "high" if alert["severity"] == "critical" else "medium"))
        if rule is not None and rule.signal in {"dataset_drift_share", "accuracy_drop"}:
            recommendations.append("retrain a candidate on the Retrain page (with labelled traffic) and compare it "
                                   "with production before promoting it")
        else:
            recommendations.append("look at the Latency page for the version and the hours affected")
    checkpoint("done", 1.0)
    return ProcedureResult(json.loads(json.dumps(figures, default=str)), findings, recommendations)
