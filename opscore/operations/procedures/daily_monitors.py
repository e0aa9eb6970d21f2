"""The daily monitors as maintenance: the five health checks and data quality over the last day.

Both come from ``opscore.monitoring``; here their verdicts become findings, a critical check a
corrective task and a warning an adaptive one, so a problem the monitors see is followed up in the queue.
"""

from __future__ import annotations

import json
import time
from typing import Any

from opscore.config import Settings
from opscore.exceptions import NotFoundError
from opscore.monitoring.data_quality import data_quality
from opscore.monitoring.health import health_report
from opscore.operations.procedures.registry import Checkpoint, Finding, ProcedureResult, procedure

DAY = 86_400.0
_FOLLOW_UP = {"critical": ("critical", "corrective"), "warning": ("medium", "adaptive")}


@procedure("health_checks", title="The five health checks over the last day", maintenance_set="daily",
           estimated_seconds=15)
def health_checks(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    checkpoint("running the health checks", 0.0)
    report = health_report(settings, now=params.get("now"), window=float(params.get("window", DAY))).to_dict()
    findings, recommendations = [], []
    for name, check in report["checks"].items():
        severity, follow_up = _FOLLOW_UP.get(check["status"], (None, None))
        if severity is not None:
            findings += [Finding(f"{name}: {issue}", severity, follow_up=follow_up) for issue in check["issues"]]
        recommendations += [f"{name}: {line}" for line in check["recommendations"]]
    return ProcedureResult(json.loads(json.dumps(report, default=str)), findings, recommendations)


@procedure("data_quality", title="Data quality of production's traffic over the last day", maintenance_set="daily",
           estimated_seconds=10)
def daily_data_quality(settings: Settings, params: dict[str, Any], checkpoint: Checkpoint) -> ProcedureResult:
    end = float(params.get("now", time.time()))
    checkpoint("reading the quality rollups", 0.0)
    try:
        report = data_quality(settings, end - float(params.get("window", DAY)), end, params.get("version"))
    except NotFoundError as exc:
        return ProcedureResult(recommendations=[str(exc)])
    table = report.to_df()
    figures = {"version": report.version, "rows": report.rows,
               "columns": json.loads(table.to_json(orient="index")) if not table.empty else {},
               "rejected": {f"{column}/{reason}": n for (column, reason), n in report.rejected.items()}}
    findings = [Finding(line, "medium", follow_up="corrective") for line in report.findings]
    return ProcedureResult(figures, findings)
