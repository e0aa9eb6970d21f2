"""The schedules' tables: each schedule's cron where it is read, its next runs across a clock change, its firings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from opscore.operations.schedules import DEFAULT_CRON, edit_schedule, tick
from opscore.views.maintenance_schedules import (
    firings_frame,
    next_runs_frame,
    schedule_board,
    schedules_frame,
)

# Saturday 2026-03-28 12:00 UTC.
BEFORE_SPRING = datetime(2026, 3, 28, 12, tzinfo=UTC).timestamp()


def test_one_row_per_schedule_with_its_next_run(workspace):
    board = schedule_board(workspace, now=BEFORE_SPRING)
    frame = schedules_frame(board).set_index("schedule")
    assert list(frame.index) == list(DEFAULT_CRON)
    assert frame.loc["weekly", "cron"] == "0 3 * * SUN" and frame.loc["weekly", "timezone"] == "UTC"
    assert frame.loc["weekly", "next run"] == "Sun 2026-03-29 03:00 UTC"
    assert frame.loc["daily", "last fired"] == "never" and frame.loc["daily", "misfire policy"].startswith("run once late")


def test_next_runs_keep_their_wall_time_across_the_spring_change(workspace):
    # Berlin moves its clocks from 02:00 to 03:00 in the night to Sunday 29 March 2026.
    settings = replace(workspace, schedule_timezone="Europe/Berlin")
    friday = datetime(2026, 3, 27, 12, tzinfo=UTC).timestamp()
    daily = next(s for s in schedule_board(settings, now=friday) if s["name"] == "daily")
    runs = next_runs_frame(daily)
    assert runs["local time"].tolist() == ["Sat 2026-03-28 02:00 CET", "Sun 2026-03-29 03:00 CEST",
                                           "Mon 2026-03-30 02:00 CEST", "Tue 2026-03-31 02:00 CEST",
                                           "Wed 2026-04-01 02:00 CEST"]
    assert runs["UTC offset"].tolist() == ["+1 h", "+2 h", "+2 h", "+2 h", "+2 h"]
    assert runs["UTC"].tolist()[:3] == ["2026-03-28 01:00 UTC", "2026-03-29 01:00 UTC", "2026-03-30 00:00 UTC"]


def test_a_firing_and_an_edit_show_up(workspace, operator):
    fire = datetime(2026, 3, 28, 2, tzinfo=UTC).timestamp()
    created = tick(workspace, fire + 5)
    edit_schedule(workspace, "weekly", enabled=False, actor=operator, now=fire + 10)
    board = {s["name"]: s for s in schedule_board(workspace, now=fire + 60)}
    firings = firings_frame(board["daily"])
    assert firings[["fire time", "outcome", "late", "tasks"]].to_dict("records") == [
        {"fire time": "Sat 2026-03-28 02:00 UTC", "outcome": "run", "late": "5 s", "tasks": len(created)}]
    frame = schedules_frame(list(board.values())).set_index("schedule")
    assert frame.loc["daily", "last fired"] == "Sat 2026-03-28 02:00 UTC (run)"
    assert not frame.loc["weekly", "enabled"] and frame.loc["weekly", "next run"] == "— (disabled)"
    assert frame.loc["weekly", "edited by"].startswith(str(operator))
    assert next_runs_frame(board["weekly"]).empty
