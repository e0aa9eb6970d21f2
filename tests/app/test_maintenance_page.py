"""Maintenance page: the health report, capacity and the scorecard; the queue for an operator, read-only for a viewer."""

from __future__ import annotations

from app_under_test import OPERATOR, run_page

from opscore.config import load_settings
from opscore.monitoring.health import CHECKS
from opscore.operations.maturity import AREAS, maturity_scorecard
from opscore.operations.schedules import get_schedule
from opscore.operations.tasks import create_task, get_task, list_tasks

PAGE = "pages/maintenance.py"


def table_with(at, column: str):
    """The page's table that has ``column`` (AppTest finds tables by position, not by key)."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def test_reports_render_for_a_viewer(demo_workspace) -> None:
    at = run_page(PAGE)
    assert not at.exception and not at.error, [e.value for e in at.error]
    charts = {chart.key for chart in at.get("plotly_chart")}
    assert {"capacity_heatmap", "capacity_projection", "maturity_chart"} <= charts
    scorecard = table_with(at, "next_step")
    expected = maturity_scorecard(load_settings()).to_df()
    assert list(scorecard["area"]) == list(AREAS) and list(scorecard["level"]) == list(expected["level"])
    tiles = [m.value for m in at.markdown if m.value.startswith("**") and "  \n:material/" in m.value]
    assert len(tiles) == len(CHECKS)


def test_reports_render_for_an_operator(demo_workspace) -> None:
    at = run_page(PAGE, OPERATOR)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert table_with(at, "figure").set_index("figure").loc["busiest hour", "value"] != "-"


CONTROLS = {"run_task", "cancel_task", "retry_task", "create_task"}


def create_from_the_page(at, procedure: str, priority: str = "medium", due: str = "now") -> str:
    at.selectbox(key="new_procedure").set_value(procedure)
    at.selectbox(key="new_priority").set_value(priority)
    at.text_input(key="new_due").set_value(due)
    at.button(key="create_task").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at.selectbox(key="task_id").value


def test_an_operator_creates_runs_and_cancels_tasks(demo_workspace) -> None:
    settings = load_settings()
    at = run_page(PAGE, OPERATOR)
    assert any("queue is empty" in c.value for c in at.caption)

    checks = create_from_the_page(at, "health_checks", priority="high")
    task = get_task(settings, checks)
    assert (task.procedure, task.priority, task.status, task.created_by) == ("health_checks", "high", "pending",
                                                                             "operator:alice")
    assert task.cause.kind == "operator"
    assert any(checks in s.value for s in at.success)

    at.button(key="run_task").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ran = get_task(settings, checks)
    assert ran.status == "success" and [a.outcome for a in ran.attempts] == ["success"]
    assert set(ran.result["figures"]["checks"]) == set(CHECKS)
    assert any(f"Task {checks} ran: success" in s.value for s in at.success)
    # The health report section now reads the task that just ran, not a fresh check.
    assert any(f"from task {checks}" in c.value for c in at.caption)
    assert at.button(key="run_task").disabled  # an ended task cannot run again, only be retried

    later = create_from_the_page(at, "data_quality", priority="low", due="2h")
    assert get_task(settings, later).status == "pending"
    at.button(key="cancel_task").click().run()
    assert not at.exception
    assert get_task(settings, later).status == "cancelled"
    assert at.button(key="retry_task").disabled is False
    at.button(key="retry_task").click().run()
    assert get_task(settings, later).status == "pending"
    # Anything else in the queue was opened by a finding of the health checks.
    others = [t for t in list_tasks(settings) if t.id not in (checks, later)]
    assert {(t.created_by, t.cause.kind) for t in others} <= {(f"task:{checks}", "finding")}


def test_bad_input_is_one_message_and_nothing_is_queued(demo_workspace) -> None:
    at = run_page(PAGE, OPERATOR)
    at.selectbox(key="new_procedure").set_value("cleanup")
    at.text_input(key="new_due").set_value("next tuesday-ish")
    at.button(key="create_task").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["due: expected now, a delay (30m, 2h, 1d) or a time like 2026-12-03T18:00, "
                                           "got 'next tuesday-ish'"]
    assert list_tasks(load_settings()) == []


def test_a_viewer_sees_the_queue_but_cannot_change_it(demo_workspace) -> None:
    settings = load_settings()
    queued = create_task(settings, procedure="cleanup", priority="critical", actor=OPERATOR)
    at = run_page(PAGE)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert table_with(at, "created by")["id"].tolist() == [queued.id]
    assert not CONTROLS & {b.key for b in at.button}
    assert any("needs an operator" in c.value for c in at.caption)
    assert get_task(settings, queued.id).status == "pending" and len(list_tasks(settings)) == 1


def test_an_operator_edits_a_schedule_and_a_bad_cron_is_refused(demo_workspace) -> None:
    settings = load_settings()
    at = run_page(PAGE, OPERATOR)
    assert table_with(at, "cron")["schedule"].tolist() == ["daily", "weekly", "monthly", "quarterly"]
    at.selectbox(key="schedule_name").set_value("weekly").run()
    assert len(table_with(at, "UTC offset")) == 5
    at.text_input(key="schedule_cron_weekly").set_value("0 3 * * 0")
    at.button(key="save_schedule").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["schedule 'weekly': cron: write day-of-week with names (MON-FRI, SUN), not "
                                           "numbers, in '0 3 * * 0': 0 is Sunday to cron but Monday to other schedulers"]
    assert get_schedule(settings, "weekly").cron == "0 3 * * SUN"

    at.text_input(key="schedule_cron_weekly").set_value("30 4 * * SAT")
    at.checkbox(key="schedule_enabled_weekly").uncheck()
    at.button(key="save_schedule").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    weekly = get_schedule(settings, "weekly")
    assert (weekly.cron, weekly.enabled, weekly.edited_by) == ("30 4 * * SAT", False, "dashboard:alice")
    assert table_with(at, "cron").set_index("schedule").loc["weekly", "next run"] == "— (disabled)"


def test_a_viewer_sees_the_schedules_but_cannot_edit_them(demo_workspace) -> None:
    at = run_page(PAGE)
    at.selectbox(key="schedule_name").set_value("daily").run()
    assert not at.exception and len(table_with(at, "UTC offset")) == 5
    assert "save_schedule" not in {b.key for b in at.button}
    assert get_schedule(load_settings(), "daily").edited_by is None
