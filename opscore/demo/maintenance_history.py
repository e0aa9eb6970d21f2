"""The demo's maintenance history: the night's scheduled run, a worker that stopped, a finding followed up.

Everything goes through the real queue on the demo's clock, as the traffic does: the daily set is
queued at the daily schedule's last fire time (02:00 by default), its firing recorded as a worker's
tick records it, and run by a worker whose clock starts there, each procedure reading the workspace
as it was then (its ``now`` parameter). One worker stops holding its task mid-run, the way a
restarted host does; the next worker finds the lapsed lease, records that attempt as lost and runs
the task again. An hour before the demo's now an operator's restore drill finds that no backup
exists, and its finding opens the corrective backup task the Maintenance page shows waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.operations.procedures import procedures_in
from opscore.operations.schedules import get_schedule, previous_run, record_firing
from opscore.operations.tasks import Cause, Task, create_task, list_tasks
from opscore.operations.worker import claim, execute_task, new_worker_id, run_one
from opscore.store import open_store, schedule_firings

HOUR, DAY = 3_600.0, 86_400.0
STOPPED_PROCEDURE = "data_quality"
DRILL_HOURS_AGO = 1.0


def _moving_clock(start: float) -> Callable[[], float]:
    """A clock that starts at ``start`` and runs at the real pace, so durations are the measured ones."""
    began = time.monotonic()
    return lambda: start + (time.monotonic() - began)


def last_daily_run(settings: Settings, now: float) -> float | None:
    """The daily schedule's latest fire time before ``now`` within the demo day (None: it did not fire)."""
    daily = get_schedule(settings, "daily")
    fire = previous_run(daily, now - 1) if daily.enabled else None
    return fire.timestamp() if fire is not None and fire.timestamp() > now - DAY else None


def _drain(settings: Settings, clock: Callable[[], float], worker_id: str) -> list[Task]:
    ran = []
    while (task := run_one(settings, worker_id=worker_id, clock=clock)) is not None:
        ran.append(task)
    return ran


def build_maintenance_history(settings: Settings, actor: Actor, now: float) -> list[Task]:
    """Queue and run the demo day's maintenance; returns every task in the queue afterwards."""
    fire = last_daily_run(settings, now)
    if fire is not None:
        daily = get_schedule(settings, "daily")
        stamp = datetime.fromtimestamp(fire, daily.tz).isoformat()
        # The firing and its tasks in one transaction, as the worker's tick records them; a worker ticking
        # later finds this fire time recorded and waits for the next one.
        with open_store(settings).write() as conn:
            record_firing(conn, daily.name, fire, fired_at=fire, detail="on time")
            queued = [create_task(settings, procedure=p.name, params={"now": fire}, created_by="schedule:daily",
                                  cause=Cause("schedule", f"daily@{stamp}",
                                              f"daily maintenance due {stamp} ({daily.cron}, {daily.timezone}); on time"),
                                  dedup_key=f"schedule:daily:{int(fire)}:{p.name}", now=fire, conn=conn)
                      for p in procedures_in(daily.name)]
            conn.execute(update(schedule_firings).where(schedule_firings.c.schedule == daily.name,
                                                        schedule_firings.c.fire_time == int(fire))
                         .values(task_ids=json.dumps([t.id for t in queued])))
        stopped = next(t for t in queued if t.procedure == STOPPED_PROCEDURE)
        # The first worker claims this task and then stops: its lease lapses without an outcome.
        claim(settings, new_worker_id(), fire + 1, task_id=stopped.id)
        _drain(settings, _moving_clock(fire + settings.task_lease_seconds + 120), new_worker_id())

    drill_at = now - DRILL_HOURS_AGO * HOUR
    drill = create_task(settings, procedure="restore_drill", params={"now": drill_at}, actor=actor,
                        title="Restore drill before the model review", now=drill_at)
    execute_task(settings, drill.id, clock=_moving_clock(drill_at), actor=actor)
    return list_tasks(settings)
