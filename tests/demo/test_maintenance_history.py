"""The demo's maintenance history: the night's run on the demo clock, a stopped worker, a finding followed up."""

from __future__ import annotations

from opscore.access.actors import Actor
from opscore.demo.maintenance_history import STOPPED_PROCEDURE, last_daily_run
from opscore.demo.workspace import build_demo
from opscore.operations.procedures import procedures_in
from opscore.operations.schedules import schedule_history, tick
from opscore.operations.tasks import list_tasks

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
OPERATOR = Actor("tester", "operator", "cli")


def test_the_latest_daily_run_is_the_last_two_oclock_before_now(workspace):
    assert last_daily_run(workspace, NOW) == NOW - 6 * 3600
    assert last_daily_run(workspace, NOW - 5 * 3600) == NOW - 6 * 3600
    # At 02:00 sharp today's has not fired, and yesterday's fell on the start of the demo day, not in it.
    assert last_daily_run(workspace, NOW - 6 * 3600) is None


def test_the_demo_day_holds_its_maintenance_history(workspace):
    build_demo(workspace, OPERATOR, now=NOW, scale=0.06)
    history = list_tasks(workspace)

    # The daily set ran at 02:00 on the demo clock, each procedure reading the workspace as it was then.
    fire = last_daily_run(workspace, NOW)
    daily = {t.procedure: t for t in history if t.created_by == "schedule:daily"}
    assert set(daily) == {p.name for p in procedures_in("daily")}
    for task in daily.values():
        assert task.status == "success" and task.cause.kind == "schedule" and task.params == {"now": fire}
        assert fire <= task.attempts[0].started_at < fire + 3600
    assert daily["health_checks"].result["figures"]["checked_at"] == fire
    # The firing is recorded with its tasks, so a worker ticking now does not fire 02:00 again.
    firing = schedule_history(workspace, "daily")[0]
    assert firing["fire_ts"] == fire and set(firing["task_ids"]) == {t.id for t in daily.values()}
    assert tick(workspace, NOW) == []

    # A worker that stopped left its task to the next one, which ran it.
    stopped = daily[STOPPED_PROCEDURE]
    assert [a.outcome for a in stopped.attempts] == ["lost", "success"]
    assert "stopped holding the task" in stopped.attempts[0].error
    assert stopped.attempts[0].worker != stopped.attempts[1].worker

    # The restore drill found no backup, and its finding opened a corrective backup, waiting to run.
    drill = next(t for t in history if t.procedure == "restore_drill")
    assert drill.status == "success" and drill.created_by == "operator:demo"
    assert [f["severity"] for f in drill.result["findings"]] == ["critical"]
    follow_up = next(t for t in history if t.parent_task == drill.id)
    assert (follow_up.procedure, follow_up.type, follow_up.priority, follow_up.status) == (
        "verified_backup", "corrective", "critical", "pending")
    assert follow_up.cause.kind == "finding" and follow_up.created_by == f"task:{drill.id}"
