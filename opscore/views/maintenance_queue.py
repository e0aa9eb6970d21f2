"""The maintenance queue as the Maintenance page shows it: tables of tasks, attempts and results.

Everything here reads the queue through :mod:`opscore.operations.tasks`; the page only renders
what these functions return and calls the queue's own functions to change it. A task's result
keeps whatever its procedure found, nested as the procedure wrote it; :func:`result_figures`
flattens it to one row per figure, so every procedure's result reads the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from opscore.config import Settings
from opscore.monitoring.health import health_report
from opscore.operations.procedures import available_procedures, get_procedure
from opscore.operations.tasks import Task, list_tasks
from opscore.views.formatting import duration, when
from opscore.views.overview import HealthSection, health_section_of

ANY = "any"
HEALTH_PROCEDURE = "health_checks"
DAY = 86_400.0
# Beyond this a figure is a blob, not something to read in a table cell.
CELL_CHARACTERS = 160


def queue_frame(tasks: list[Task]) -> pd.DataFrame:
    """One row per task, in queue order: where it stands and how urgent first, then what it runs and who asked."""
    columns = ["id", "status", "priority", "type", "title", "due", "attempts", "created by", "took", "note"]
    return pd.DataFrame([{
        "id": t.id, "status": t.status, "priority": t.priority, "type": t.type, "title": t.title,
        "due": when(t.due_at, "%Y-%m-%d %H:%M UTC"), "attempts": f"{len(t.attempts)} of {t.max_attempts}",
        "created by": t.created_by, "took": duration(t.actual_seconds) if t.actual_seconds is not None else "",
        "note": t.note,
    } for t in tasks], columns=columns)


def attempts_frame(task: Task) -> pd.DataFrame:
    """Every attempt of ``task``: who ran it, when, how it ended and why it failed."""
    columns = ["attempt", "worker", "started", "ended", "took", "outcome", "error"]
    return pd.DataFrame([{
        "attempt": a.number, "worker": a.worker, "started": when(a.started_at), "ended": when(a.ended_at),
        "took": duration(a.ended_at - a.started_at) if a.ended_at is not None else "running",
        "outcome": a.outcome or "running", "error": a.error or "",
    } for a in task.attempts], columns=columns)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= CELL_CHARACTERS else text[:CELL_CHARACTERS - 1] + "…"


def _flatten(prefix: str, value: Any, rows: list[dict[str, str]]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, rows)
    else:
        rows.append({"figure": prefix, "value": _cell(value)})


def result_figures(task: Task) -> pd.DataFrame:
    """The result's figures as (figure, value) rows, nested tables as dotted names."""
    rows: list[dict[str, str]] = []
    _flatten("", (task.result or {}).get("figures", {}), rows)
    return pd.DataFrame(rows, columns=["figure", "value"])


def result_findings(task: Task) -> pd.DataFrame:
    """What the procedure found, with the follow-up each finding asked for."""
    return pd.DataFrame([{"severity": f["severity"], "finding": f["summary"], "follow-up": f.get("follow_up") or ""}
                         for f in (task.result or {}).get("findings", [])],
                        columns=["severity", "finding", "follow-up"])


def result_recommendations(task: Task) -> list[str]:
    return list((task.result or {}).get("recommendations", []))


def follow_ups(settings: Settings, task_id: str) -> list[Task]:
    """The tasks a task's findings opened (each names it as its creator)."""
    return list_tasks(settings, created_by_prefix=f"task:{task_id}")


def shown_params(task: Task) -> str:
    """The parameters an operator gave, as ``key=value``; the queue's own (``_resolves``...) stay out."""
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in sorted(task.params.items())
                     if not k.startswith("_"))


def task_label(task: Task) -> str:
    return f"{task.id} · {task.status} · {task.priority} · {task.title}"


def procedure_labels() -> dict[str, str]:
    """Every registered procedure by name, labelled with what it does and where it belongs."""
    labels = {}
    for name in available_procedures():
        proc = get_procedure(name)
        labels[name] = f"{proc.title} ({proc.maintenance_set or 'on demand'}, {proc.task_type})"
    return labels


def queue(settings: Settings, status: str = ANY, type: str = ANY, priority: str = ANY,  # noqa: A002
          limit: int = 200) -> list[Task]:
    """The queue under the page's filters (``any`` lets every value through)."""
    def chosen(value: str) -> str | None:
        return None if value == ANY else value

    return list_tasks(settings, status=chosen(status), type=chosen(type), priority=chosen(priority), limit=limit)


@dataclass(frozen=True)
class LatestHealth:
    """The newest health report: the daily task's when one ran, else the checks run now."""

    section: HealthSection
    task: Task | None


def latest_health(settings: Settings, now: float | None = None) -> LatestHealth:
    """The result of the newest successful health-check task, or the five checks over the last day now."""
    for task in list_tasks(settings, status="success", limit=500):
        if task.procedure == HEALTH_PROCEDURE and task.result and "checks" in task.result.get("figures", {}):
            return LatestHealth(health_section_of(task.result["figures"]), task)
    now = time.time() if now is None else now
    return LatestHealth(health_section_of(health_report(settings, now=now, window=DAY).to_dict()), None)
