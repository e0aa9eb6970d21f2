"""The queue's tables: tasks in queue order, every attempt, and any procedure's result read the same way."""

from __future__ import annotations

import json

from opscore.monitoring.health import CHECKS
from opscore.operations.tasks import create_task
from opscore.operations.worker import execute_task
from opscore.views.maintenance_queue import (
    ANY,
    attempts_frame,
    follow_ups,
    latest_health,
    procedure_labels,
    queue,
    queue_frame,
    result_figures,
    result_findings,
    result_recommendations,
    shown_params,
)
from tests.operations import queue_probes  # noqa: F401 - registers the probe procedures

NOW = 1_764_000_000.0


def test_queue_frame_keeps_queue_order_and_says_who_asked(workspace, operator):
    low = create_task(workspace, procedure="probe_record", priority="low", actor=operator, now=NOW)
    urgent = create_task(workspace, procedure="probe_record", priority="critical", actor=operator, now=NOW + 60)
    frame = queue_frame(queue(workspace))
    assert frame["id"].tolist() == [urgent.id, low.id]
    assert frame.loc[0, "created by"] == f"operator:{operator.name}" and frame.loc[0, "status"] == "pending"
    assert frame.loc[0, "attempts"] == f"0 of {workspace.task_max_attempts}" and frame.loc[1, "due"] == "2025-11-24 16:00 UTC"
    assert queue(workspace, priority="low")[0].id == low.id
    assert queue(workspace, status="success", type=ANY) == []


def test_a_failed_attempt_shows_its_error_and_the_next_its_result(workspace, operator):
    task = create_task(workspace, procedure="probe_flaky", params={"label": "views-flaky", "failures": 1},
                       actor=operator)
    failed = execute_task(workspace, task.id)
    assert failed.status == "up_for_retry"
    rows = attempts_frame(failed)
    assert rows["outcome"].tolist() == ["failed"] and "planted failure 1" in rows.loc[0, "error"]
    done = execute_task(workspace, task.id)
    rows = attempts_frame(done)
    assert rows["outcome"].tolist() == ["failed", "success"] and rows.loc[1, "error"] == ""
    assert result_figures(done).to_dict("records") == [{"figure": "runs", "value": "2"}]


def test_a_health_check_result_flattens_and_becomes_the_latest_report(served, operator):
    before = latest_health(served)
    assert before.task is None and [t.name for t in before.section.tiles] == list(CHECKS)
    task = execute_task(served, create_task(served, procedure="health_checks", actor=operator).id)
    figures = result_figures(task).set_index("figure")["value"]
    assert figures["overall"] == task.result["figures"]["overall"]
    assert figures["checks.performance.status"] == task.result["figures"]["checks"]["performance"]["status"]
    findings = result_findings(task)
    assert len(findings) == len(task.result["findings"])
    after = latest_health(served)
    assert after.task is not None and after.task.id == task.id
    assert after.section.checked_at == task.result["figures"]["checked_at"]
    assert [t.status for t in after.section.tiles] == [task.result["figures"]["checks"][c]["status"] for c in CHECKS]


def test_findings_show_with_the_follow_ups_they_opened(workspace, operator):
    plant = [["disk nearly full", "high", "corrective"], ["a note", "low", None]]
    task = execute_task(workspace, create_task(workspace, procedure="probe_finder", params={"plant": plant},
                                               actor=operator).id)
    assert result_findings(task).to_dict("records") == [
        {"severity": "high", "finding": "disk nearly full", "follow-up": "corrective"},
        {"severity": "low", "finding": "a note", "follow-up": ""}]
    assert result_recommendations(task) == ["look at the findings"]
    opened = follow_ups(workspace, task.id)
    assert [(t.type, t.priority, t.parent_task) for t in opened] == [("corrective", "high", task.id)]
    # The re-check carries the finding it must clear; that is the queue's business, not a parameter to show.
    assert "_resolves" in opened[0].params and shown_params(opened[0]) == f'plant={json.dumps(plant)}'


def test_every_procedure_is_offered_with_its_set():
    labels = procedure_labels()
    assert "health_checks" in labels and labels["health_checks"].endswith("(daily, preventive)")
    assert "(on demand, adaptive)" in labels["retrain_candidate"]
