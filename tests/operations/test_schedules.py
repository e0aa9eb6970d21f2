"""Maintenance schedules with an injected clock: fire times across daylight-saving changes, misfires,
coalescing, each firing recorded once under concurrent workers, and settings refused by key."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from opscore.access.actors import Actor
from opscore.config import load_settings, replace
from opscore.exceptions import BadInputError, NotFoundError, PermissionDenied
from opscore.operations.schedules import (
    DEFAULT_CRON,
    Schedule,
    configured_schedules,
    due_firing,
    edit_schedule,
    get_schedule,
    next_runs,
    parse_cron,
    previous_run,
    record_firing,
    schedule_history,
)
from opscore.store import open_store, schedule_firings
from tests.conftest import OPERATOR

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
VIEWER = Actor("watcher", "viewer", "dashboard")


def default(name: str, timezone: str, **changes) -> Schedule:
    return Schedule(name, DEFAULT_CRON[name], timezone, **changes)


def runs(name: str, timezone: str, after: datetime) -> list[str]:
    return [t.isoformat() for t in next_runs(default(name, timezone), after)]


# -- the next five runs of each default schedule across a daylight-saving change ---------------------
# 2026: Europe/Berlin springs forward on 29 March (02:00 -> 03:00) and falls back on 25 October
# (03:00 -> 02:00); America/New_York springs forward on 8 March (02:00 -> 03:00) and falls back on
# 1 November (02:00 -> 01:00).

def test_daily_across_berlin_spring_forward_runs_at_three_the_night_two_oclock_is_skipped():
    assert runs("daily", "Europe/Berlin", datetime(2026, 3, 26, 12, tzinfo=BERLIN)) == [
        "2026-03-27T02:00:00+01:00", "2026-03-28T02:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 does not exist that night: the first instant after the jump
        "2026-03-30T02:00:00+02:00", "2026-03-31T02:00:00+02:00"]


def test_daily_across_berlin_fall_back_runs_once_in_the_repeated_hour():
    fired = next_runs(default("daily", "Europe/Berlin"), datetime(2026, 10, 23, 12, tzinfo=BERLIN))
    assert [t.isoformat() for t in fired] == [
        "2026-10-24T02:00:00+02:00",
        "2026-10-25T02:00:00+02:00",  # 02:00 happens twice that night: the first one, once
        "2026-10-26T02:00:00+01:00", "2026-10-27T02:00:00+01:00", "2026-10-28T02:00:00+01:00"]
    assert [t.astimezone(UTC).hour for t in fired] == [0, 0, 1, 1, 1]
    instants = [t.astimezone(UTC) for t in fired]
    assert [(b - a) / timedelta(hours=1) for a, b in zip(instants, instants[1:], strict=False)] == [24, 25, 24, 24]


def test_daily_across_new_york_spring_forward_and_fall_back():
    assert runs("daily", "America/New_York", datetime(2026, 3, 5, 12, tzinfo=NEW_YORK)) == [
        "2026-03-06T02:00:00-05:00", "2026-03-07T02:00:00-05:00", "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:00:00-04:00", "2026-03-10T02:00:00-04:00"]
    assert runs("daily", "America/New_York", datetime(2026, 10, 29, 12, tzinfo=NEW_YORK)) == [
        "2026-10-30T02:00:00-04:00", "2026-10-31T02:00:00-04:00", "2026-11-01T02:00:00-05:00",
        "2026-11-02T02:00:00-05:00", "2026-11-03T02:00:00-05:00"]


def test_a_wall_time_in_new_yorks_repeated_hour_fires_once_at_its_first_occurrence():
    schedule = Schedule("daily", "30 1 * * *", "America/New_York")
    fired = next_runs(schedule, datetime(2026, 10, 30, 12, tzinfo=NEW_YORK))
    assert [t.isoformat() for t in fired] == [
        "2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00",
        "2026-11-03T01:30:00-05:00", "2026-11-04T01:30:00-05:00"]
    # Asked from between the two 01:30s (01:15 the second time), the next run is the next day's.
    second_pass = datetime(2026, 11, 1, 1, 15, tzinfo=NEW_YORK, fold=1)
    assert next_runs(schedule, second_pass, 1)[0].isoformat() == "2026-11-02T01:30:00-05:00"


def test_a_skipped_wall_time_is_not_lost_when_asked_from_just_after_the_jump():
    schedule = Schedule("daily", "30 2 * * *", "America/New_York")
    just_after = datetime(2026, 3, 8, 3, 10, tzinfo=NEW_YORK)  # 02:30 never happened; it runs at 03:30
    assert next_runs(schedule, just_after, 2)[0].isoformat() == "2026-03-08T03:30:00-04:00"


def test_weekly_on_sundays_across_both_changes_in_berlin_and_new_york():
    assert runs("weekly", "Europe/Berlin", datetime(2026, 3, 15, 12, tzinfo=BERLIN)) == [
        "2026-03-22T03:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-04-05T03:00:00+02:00",
        "2026-04-12T03:00:00+02:00", "2026-04-19T03:00:00+02:00"]
    assert runs("weekly", "Europe/Berlin", datetime(2026, 10, 11, 12, tzinfo=BERLIN)) == [
        "2026-10-18T03:00:00+02:00", "2026-10-25T03:00:00+01:00", "2026-11-01T03:00:00+01:00",
        "2026-11-08T03:00:00+01:00", "2026-11-15T03:00:00+01:00"]
    assert runs("weekly", "America/New_York", datetime(2026, 2, 25, 12, tzinfo=NEW_YORK)) == [
        "2026-03-01T03:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-15T03:00:00-04:00",
        "2026-03-22T03:00:00-04:00", "2026-03-29T03:00:00-04:00"]
    assert all(t.weekday() == 6 for t in next_runs(default("weekly", "America/New_York"),
                                                   datetime(2026, 10, 20, tzinfo=NEW_YORK)))


def test_monthly_on_the_first_across_both_changes():
    assert runs("monthly", "Europe/Berlin", datetime(2026, 1, 15, tzinfo=BERLIN)) == [
        "2026-02-01T04:00:00+01:00", "2026-03-01T04:00:00+01:00", "2026-04-01T04:00:00+02:00",
        "2026-05-01T04:00:00+02:00", "2026-06-01T04:00:00+02:00"]
    assert runs("monthly", "America/New_York", datetime(2026, 9, 15, tzinfo=NEW_YORK)) == [
        "2026-10-01T04:00:00-04:00", "2026-11-01T04:00:00-05:00", "2026-12-01T04:00:00-05:00",
        "2027-01-01T04:00:00-05:00", "2027-02-01T04:00:00-05:00"]


def test_quarterly_on_the_first_of_january_april_july_october():
    assert runs("quarterly", "Europe/Berlin", datetime(2026, 1, 15, tzinfo=BERLIN)) == [
        "2026-04-01T05:00:00+02:00", "2026-07-01T05:00:00+02:00", "2026-10-01T05:00:00+02:00",
        "2027-01-01T05:00:00+01:00", "2027-04-01T05:00:00+02:00"]
    fired = next_runs(default("quarterly", "America/New_York"), datetime(2026, 1, 15, tzinfo=NEW_YORK))
    assert [t.astimezone(UTC).isoformat() for t in fired] == [
        "2026-04-01T09:00:00+00:00", "2026-07-01T09:00:00+00:00", "2026-10-01T09:00:00+00:00",
        "2027-01-01T10:00:00+00:00", "2027-04-01T09:00:00+00:00"]


def test_next_runs_take_an_epoch_and_start_strictly_after_it():
    fire = datetime(2026, 3, 29, 3, tzinfo=BERLIN)
    first = next_runs(default("daily", "Europe/Berlin"), fire.timestamp(), 1)[0]
    assert first.isoformat() == "2026-03-30T02:00:00+02:00"
    assert previous_run(default("daily", "Europe/Berlin"), fire.timestamp() + 1) == fire


def test_the_defaults_run_in_the_configured_timezone(workspace):
    schedules = {s.name: s for s in configured_schedules(replace(workspace, schedule_timezone="Europe/Berlin"))}
    assert {n: s.cron for n, s in schedules.items()} == DEFAULT_CRON
    assert {s.timezone for s in schedules.values()} == {"Europe/Berlin"}
    assert {s.misfire_policy for s in schedules.values()} == {"run_once_late"}
    assert {s.grace_seconds for s in schedules.values()} == {3600.0}
    assert {s.timezone for s in configured_schedules(workspace)} == {"UTC"}


# -- misfires and coalescing -------------------------------------------------------------------------

DAILY = default("daily", "Europe/Berlin")
LAST = datetime(2026, 3, 1, 2, tzinfo=BERLIN)


def test_on_time_firing_runs():
    due = due_firing(DAILY, LAST, datetime(2026, 3, 2, 2, 0, 5, tzinfo=BERLIN))
    assert due.run and due.fire_time == datetime(2026, 3, 2, 2, tzinfo=BERLIN)
    assert due.late_seconds == 5 and due.coalesced == 0 and due.reason == "on time"


def test_nothing_is_due_before_the_next_fire_time_or_twice_for_one():
    assert due_firing(DAILY, LAST, datetime(2026, 3, 2, 1, 59, tzinfo=BERLIN)) is None
    fire = datetime(2026, 3, 2, 2, tzinfo=BERLIN)
    assert due_firing(DAILY, fire, datetime(2026, 3, 2, 2, 40, tzinfo=BERLIN)) is None


def test_run_once_late_within_grace_fires_once_late():
    now = datetime(2026, 3, 2, 2, 40, tzinfo=BERLIN)
    due = due_firing(DAILY, LAST, now)
    assert due.run and due.outcome == "run" and due.late_seconds == 2400
    assert due.fire_time == datetime(2026, 3, 2, 2, tzinfo=BERLIN)
    assert "40 min late, within the grace of 60 min" in due.reason
    # Once that firing is recorded, the next tick finds nothing due.
    assert due_firing(DAILY, due.fire_time, now + timedelta(seconds=5)) is None


def test_run_once_late_beyond_grace_is_skipped():
    due = due_firing(DAILY, LAST, datetime(2026, 3, 2, 3, 30, tzinfo=BERLIN))
    assert not due.run and due.outcome == "skipped" and due.late_seconds == 5400
    assert "past the grace of 60 min" in due.reason
    wider = default("daily", "Europe/Berlin", grace_seconds=7200.0)
    assert due_firing(wider, LAST, datetime(2026, 3, 2, 3, 30, tzinfo=BERLIN)).run


def test_skip_policy_runs_only_on_time():
    strict = default("daily", "Europe/Berlin", misfire_policy="skip")
    assert due_firing(strict, LAST, datetime(2026, 3, 2, 2, 0, 30, tzinfo=BERLIN)).run
    late = due_firing(strict, LAST, datetime(2026, 3, 2, 2, 5, tzinfo=BERLIN))
    assert not late.run and "the skip policy runs only on time" in late.reason


def test_three_missed_daily_firings_coalesce_into_one():
    due = due_firing(DAILY, LAST, datetime(2026, 3, 4, 2, 10, tzinfo=BERLIN))
    assert due.run and due.fire_time == datetime(2026, 3, 4, 2, tzinfo=BERLIN)
    assert due.coalesced == 2 and "stands for 2 earlier missed fire time(s)" in due.reason
    stale = due_firing(DAILY, LAST, datetime(2026, 3, 4, 12, tzinfo=BERLIN))
    assert not stale.run and stale.coalesced == 2 and stale.fire_time == datetime(2026, 3, 4, 2, tzinfo=BERLIN)


def test_a_long_outage_of_a_frequent_schedule_coalesces_into_one_firing_at_the_latest_time():
    every_minute = Schedule("daily", "* * * * *", "UTC")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    due = due_firing(every_minute, start, start + timedelta(days=10, seconds=30))
    assert due.run and due.fire_time == start + timedelta(days=10)
    assert due.coalesced == 999 and "at least 999" in due.reason


def test_a_schedule_that_never_fired_looks_back_only_over_its_grace():
    assert due_firing(DAILY, None, datetime(2026, 3, 2, 2, 30, tzinfo=BERLIN)).run
    first = due_firing(Schedule("daily", "*/5 * * * *", "UTC"), None, datetime(2026, 3, 2, 2, 31, tzinfo=UTC))
    assert first.fire_time == datetime(2026, 3, 2, 2, 30, tzinfo=UTC) and first.coalesced == 0
    assert due_firing(DAILY, None, datetime(2026, 3, 2, 12, tzinfo=BERLIN)) is None
    assert due_firing(default("daily", "Europe/Berlin", enabled=False), LAST,
                      datetime(2026, 3, 2, 2, tzinfo=BERLIN)) is None


# -- each firing recorded once -----------------------------------------------------------------------

def test_recording_a_firing_twice_keeps_one_row(any_workspace):
    store = open_store(any_workspace)
    fire = datetime(2026, 3, 2, 2, tzinfo=BERLIN)
    with store.write() as conn:
        assert record_firing(conn, "daily", fire, fired_at=fire.timestamp())
    with store.write() as conn:
        assert record_firing(conn, "daily", fire.timestamp(), outcome="skipped") is False
        # The transaction is still usable after losing: the next firing records in it.
        assert record_firing(conn, "daily", fire + timedelta(days=1))
    history = schedule_history(replace(any_workspace, schedule_timezone="Europe/Berlin"), "daily", 10)
    assert [(h["fire_time"], h["outcome"]) for h in history] == [
        ("2026-03-03T02:00:00+01:00", "run"), ("2026-03-02T02:00:00+01:00", "run")]


def test_two_workers_recording_one_firing_make_one_row(any_workspace):
    """Threads with their own connections race on the same fire times; one wins each, none raises."""
    store = open_store(any_workspace)
    rounds, workers = 15, 4
    base = datetime(2026, 3, 1, 2, tzinfo=UTC)
    barrier = threading.Barrier(workers)
    wins: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for i in range(rounds):
                barrier.wait()
                with store.write() as conn:
                    won = record_firing(conn, "weekly", base + timedelta(days=7 * i))
                with lock:
                    wins.append((i, won))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(wins) == rounds * workers
    assert all(sum(won for j, won in wins if j == i) == 1 for i in range(rounds))
    with store.read() as conn:
        per_fire = conn.execute(select(schedule_firings.c.fire_time, func.count())
                                .group_by(schedule_firings.c.fire_time)).all()
    assert len(per_fire) == rounds and {n for _, n in per_fire} == {1}


# -- settings and edits ------------------------------------------------------------------------------

@pytest.mark.parametrize(("tables", "message"), [
    ({"weekly": {"cron": "0 3 * * 0"}}, r"setting 'schedules\.weekly\.cron': write day-of-week with names"),
    ({"daily": {"cron": "61 2 * * *"}}, r"setting 'schedules\.daily\.cron': '61 2 \* \* \*' is not a valid cron"),
    ({"daily": {"cron": "0 2 * *"}}, r"setting 'schedules\.daily\.cron': a cron expression has 5 fields"),
    ({"monthly": {"cron": "0 4 31 FEB *"}}, r"setting 'schedules\.monthly\.cron': '0 4 31 FEB \*' never fires"),
    ({"daily": {"misfire_policy": "later"}}, r"setting 'schedules\.daily\.misfire_policy': expected one of run_once_late, skip"),
    ({"daily": {"grace_seconds": -5}}, r"setting 'schedules\.daily\.grace_seconds': expected a number of seconds"),
    ({"daily": {"enabled": "yes"}}, r"setting 'schedules\.daily\.enabled': expected true or false"),
    ({"daily": {"when": "2am"}}, r"setting 'schedules\.daily': unknown field\(s\) when"),
    ({"hourly": {"cron": "0 * * * *"}}, r"setting 'schedules\.hourly': unknown schedule"),
])
def test_a_bad_schedule_setting_is_refused_by_its_key(workspace, tables, message):
    with pytest.raises(BadInputError, match=message):
        configured_schedules(replace(workspace, schedules=tables))


def test_a_bad_timezone_is_refused_by_its_key(workspace):
    with pytest.raises(BadInputError, match=r"setting 'schedule_timezone': 'Mars/Olympus' is not an IANA timezone"):
        configured_schedules(replace(workspace, schedule_timezone="Mars/Olympus"))


def test_opscore_toml_overrides_a_schedule(workspace):
    (workspace.workspace / "opscore.toml").write_text(
        'schedule_timezone = "America/New_York"\n'
        '[schedules.weekly]\ncron = "30 4 * * SAT"\nmisfire_policy = "skip"\n'
        '[schedules.quarterly]\nenabled = false\ngrace_seconds = 600\n')
    settings = load_settings()
    weekly, quarterly = get_schedule(settings, "weekly"), get_schedule(settings, "quarterly")
    assert (weekly.cron, weekly.misfire_policy, weekly.timezone) == ("30 4 * * SAT", "skip", "America/New_York")
    assert next_runs(weekly, datetime(2026, 3, 2, tzinfo=NEW_YORK), 1)[0].isoformat() == "2026-03-07T04:30:00-05:00"
    assert (quarterly.enabled, quarterly.grace_seconds, quarterly.cron) == (False, 600.0, DEFAULT_CRON["quarterly"])


def test_a_bad_cron_in_opscore_toml_is_refused_with_the_reason(workspace):
    (workspace.workspace / "opscore.toml").write_text('[schedules.weekly]\ncron = "0 3 * * 7"\n')
    with pytest.raises(BadInputError, match=r"schedules\.weekly\.cron.*names.*not numbers"):
        configured_schedules(load_settings())


def test_an_operator_edits_a_schedule_above_the_file(workspace):
    settings = replace(workspace, schedules={"daily": {"cron": "0 1 * * *"}})
    edited = edit_schedule(settings, "daily", cron="15  3 * * MON-FRI", actor=OPERATOR, now=1000.0)
    assert (edited.cron, edited.enabled, edited.edited_by, edited.edited_at) == (
        "15 3 * * MON-FRI", True, str(OPERATOR), 1000.0)
    disabled = edit_schedule(settings, "daily", enabled=False, actor=OPERATOR)
    assert (disabled.cron, disabled.enabled) == ("15 3 * * MON-FRI", False)  # the cron edit stays
    assert due_firing(disabled, LAST, datetime(2026, 3, 2, 3, 15, tzinfo=UTC)) is None
    assert get_schedule(settings, "weekly").cron == DEFAULT_CRON["weekly"]


def test_an_invalid_edit_is_refused_with_the_reason_and_changes_nothing(workspace):
    with pytest.raises(BadInputError, match=r"schedule 'weekly': cron: write day-of-week with names .* in '0 3 \* \* 1'"):
        edit_schedule(workspace, "weekly", cron="0 3 * * 1", actor=OPERATOR)
    with pytest.raises(BadInputError, match="not a valid cron expression"):
        edit_schedule(workspace, "weekly", cron="0 3 * * SUNDAY-ish", actor=OPERATOR)
    with pytest.raises(PermissionDenied, match="needs an operator"):
        edit_schedule(workspace, "weekly", cron="0 4 * * SUN", actor=VIEWER)
    with pytest.raises(NotFoundError, match="no schedule named 'hourly'"):
        edit_schedule(workspace, "hourly", cron="0 * * * *", actor=OPERATOR)
    assert get_schedule(workspace, "weekly").cron == DEFAULT_CRON["weekly"]
    assert get_schedule(workspace, "weekly").edited_by is None


def test_parse_cron_keeps_names_and_ordinals():
    assert parse_cron(" 0 3  * * SUN#1 ", "x") == "0 3 * * SUN#1"
    assert parse_cron("0 5 1 JAN,APR,JUL,OCT *", "x") == "0 5 1 JAN,APR,JUL,OCT *"


# -- the worker's tick: the firing and its tasks in one transaction -----------------------------------

def _berlin(workspace):
    return replace(workspace, schedule_timezone="Europe/Berlin")


def _tick_at(settings, when: datetime) -> list[str]:
    from opscore.operations.schedules import tick

    return tick(settings, when.timestamp())


def test_a_due_schedule_creates_one_task_per_procedure_of_its_set_once(workspace):
    from opscore.operations.procedures import procedures_in
    from opscore.operations.tasks import get_task, list_tasks

    settings = _berlin(workspace)
    fire = datetime(2026, 3, 2, 2, tzinfo=BERLIN)
    created = _tick_at(settings, fire + timedelta(seconds=5))
    expected = [p.name for p in procedures_in("daily")]
    tasks = [get_task(settings, task_id) for task_id in created]
    assert [t.procedure for t in tasks] == expected and len(expected) >= 4
    stamp = int(fire.timestamp())
    for task in tasks:
        assert task.created_by == "schedule:daily" and task.status == "pending"
        assert (task.cause.kind, task.cause.id) == ("schedule", "daily@2026-03-02T02:00:00+01:00")
        assert task.dedup_key == f"schedule:daily:{stamp}:{task.procedure}"
        assert task.due_at == fire.timestamp() + 5
    # The next tick, and a tick a minute later, find the firing recorded: nothing new.
    assert _tick_at(settings, fire + timedelta(seconds=6)) == []
    assert _tick_at(settings, fire + timedelta(minutes=1)) == []
    assert len(list_tasks(settings, created_by_prefix="schedule:")) == len(expected)
    [firing] = schedule_history(settings, "daily", 5)
    assert (firing["outcome"], firing["task_ids"], firing["late_seconds"]) == ("run", created, 5.0)


def test_a_firing_beyond_grace_is_recorded_as_skipped_and_creates_nothing(workspace):
    settings = _berlin(workspace)
    first = datetime(2026, 3, 2, 2, tzinfo=BERLIN)
    assert _tick_at(settings, first + timedelta(seconds=1))
    # The worker was down from then until 04:30 the next day: 02:00 is 2.5 h late, past the hour of grace.
    assert _tick_at(settings, datetime(2026, 3, 3, 4, 30, tzinfo=BERLIN)) == []
    latest = schedule_history(settings, "daily", 5)[0]
    assert (latest["fire_time"], latest["outcome"], latest["task_ids"]) == ("2026-03-03T02:00:00+01:00", "skipped", [])
    assert "past the grace of 60 min" in latest["detail"]


def test_three_missed_firings_make_one_set_of_tasks(workspace):
    from opscore.operations.procedures import procedures_in

    settings = _berlin(workspace)
    assert _tick_at(settings, datetime(2026, 3, 1, 2, 0, 1, tzinfo=BERLIN))
    created = _tick_at(settings, datetime(2026, 3, 4, 2, 20, tzinfo=BERLIN))
    assert len(created) == len(procedures_in("daily"))
    latest = schedule_history(settings, "daily", 5)[0]
    assert (latest["fire_time"], latest["coalesced"]) == ("2026-03-04T02:00:00+01:00", 2)
    assert len(schedule_history(settings, "daily", 10)) == 2


def test_a_disabled_or_skip_policy_schedule_in_the_tick(workspace):
    settings = replace(_berlin(workspace), schedules={"daily": {"enabled": False},
                                                      "weekly": {"misfire_policy": "skip"}})
    sunday = datetime(2026, 3, 8, 3, tzinfo=BERLIN)
    assert _tick_at(settings, sunday + timedelta(minutes=5)) == []  # weekly 5 min late: skipped; daily off
    assert schedule_history(settings, "daily", 5) == []
    assert _tick_at(settings, sunday + timedelta(days=7, seconds=10))  # on time next Sunday: runs


_TICKER = """
import sys, time
from pathlib import Path
from opscore.config import load_settings
from opscore.operations.schedules import tick
go, settings = Path(sys.argv[1]), load_settings()
while not go.exists():
    time.sleep(0.005)
print(sum(len(tick(settings, float(now))) for now in sys.argv[2:]))
"""


def test_worker_processes_ticking_through_the_same_days_fire_each_day_once(any_workspace, monkeypatch, tmp_path):
    """Three processes tick through the same 30 days side by side; each firing must come out once."""
    import subprocess
    import sys

    from opscore.operations.procedures import procedures_in
    from opscore.operations.tasks import list_tasks

    monkeypatch.setenv("OPSCORE_SCHEDULE_TIMEZONE", "Europe/Berlin")
    open_store(any_workspace)  # the schema exists before the race
    go = tmp_path / "go"
    # 02:00:05 each day, across the spring-forward night (that day's firing is 03:00, ticked at 03:00:05).
    days = [datetime(2026, 3, 15, 2, 0, 5, tzinfo=BERLIN) + timedelta(days=d) for d in range(30)]
    nows = [str((d + timedelta(hours=1) if d.day == 29 else d).timestamp()) for d in days]
    workers = [subprocess.Popen([sys.executable, "-c", _TICKER, str(go), *nows], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    go.touch()
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    # The spring-forward Sunday's 03:00 is the weekly's fire time too.
    expected = len(days) * len(procedures_in("daily")) + len(procedures_in("weekly"))
    assert sum(int(out) for out, _ in outputs) == expected
    settings = load_settings()
    assert len(list_tasks(settings, created_by_prefix="schedule:", limit=1000)) == expected
    with open_store(settings).read() as conn:
        rows = conn.execute(select(schedule_firings.c.schedule, schedule_firings.c.fire_time,
                                   schedule_firings.c.outcome)).all()
    # Ticks at 02:00 find each later Sunday's 03:00 missed by most of a week: recorded, skipped, once.
    assert Counter((r.schedule, r.outcome) for r in rows) == {
        ("daily", "run"): len(days), ("weekly", "run"): 1, ("weekly", "skipped"): 2}
    spring = int(datetime(2026, 3, 29, 3, tzinfo=BERLIN).timestamp())
    assert spring in {r.fire_time for r in rows}
