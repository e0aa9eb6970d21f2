"""Maintenance schedules: when the daily, weekly, monthly and quarterly sets run, each firing once.

Cron is read by croniter in local wall time (``schedule_timezone``, an IANA name) and turned into
instants by zoneinfo, so 02:00 stays 02:00 on both sides of a daylight-saving change. A wall time the
clocks skip fires as far past the jump as it was past the hour (02:00 becomes 03:00 that night, 02:30
becomes 03:30); a wall time the clocks repeat fires once, at its first occurrence. Day-of-week is
written with names: 0 is Sunday to croniter but Monday to APScheduler's ``from_crontab``, so a number
there would mean different days to different readers, and a cron with one is refused.

A worker's tick asks each schedule whether a fire time passed since its last recorded firing. Missed
fire times coalesce into one firing at the latest of them. Under ``run_once_late`` a firing noticed
late still runs if it is within ``grace_seconds`` and is recorded as skipped past it; under ``skip``
a firing runs only when noticed on time (within ``ON_TIME_SECONDS``). The unique key on (schedule,
fire time) lets any number of workers tick: one records the firing and creates its tasks in the same
transaction, the others find it recorded and do nothing.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, NotFoundError
from opscore.store import open_store, schedule_firings, schedule_overrides

# The original design's maintenance times; each schedule runs the maintenance set of its name.
DEFAULT_CRON = {
    "daily": "0 2 * * *",
    "weekly": "0 3 * * SUN",
    "monthly": "0 4 1 * *",
    "quarterly": "0 5 1 JAN,APR,JUL,OCT *",
}
MISFIRE_POLICIES = ("run_once_late", "skip")
DEFAULT_GRACE_SECONDS = 3600.0
# A tick this soon after a fire time is on time: workers tick every few seconds, so only a worker
# that was down (or busy for a minute) notices a fire time later than this.
ON_TIME_SECONDS = 60.0
# How far a wall time can move against its instant around a daylight-saving change (the largest
# shifts in the tz database are two hours): searches start and end this far beyond their bounds.
_SHIFT = timedelta(hours=3)
# Missed fire times counted into one coalesced firing; a longer outage says "at least" this many.
COALESCE_LIMIT = 1000
_TABLE_FIELDS = {"cron", "enabled", "misfire_policy", "grace_seconds"}
_MAX_STEPS = 200_000


@dataclass(frozen=True)
class Schedule:
    """One schedule as it is in force: defaults < ``[schedules.NAME]`` < an operator's edit."""

    name: str
    cron: str
    timezone: str = "UTC"
    enabled: bool = True
    misfire_policy: str = "run_once_late"
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    edited_by: str | None = None
    edited_at: float | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DueFiring:
    """A fire time that passed since the last firing, and what its policy makes of it."""

    schedule: str
    fire_time: datetime  # aware, in the schedule's timezone
    run: bool  # False: recorded as skipped, no tasks
    late_seconds: float
    coalesced: int  # earlier missed fire times this firing stands for
    reason: str

    @property
    def fire_ts(self) -> int:
        return int(self.fire_time.timestamp())

    @property
    def outcome(self) -> str:
        return "run" if self.run else "skipped"


# -- reading and checking ---------------------------------------------------------------------------

def parse_timezone(name: object, what: str = "setting 'schedule_timezone'") -> ZoneInfo:
    """The IANA timezone ``name``, or BadInputError naming the setting."""
    try:
        if not isinstance(name, str) or not name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadInputError(f"{what}: {name!r} is not an IANA timezone name (e.g. UTC, Europe/Berlin, "
                            "America/New_York)") from None


def parse_cron(expr: object, what: str) -> str:
    """``expr`` as a five-field cron with day names, or BadInputError saying why not."""
    if not isinstance(expr, str) or not expr.strip():
        raise BadInputError(f"{what}: expected a cron expression like '0 3 * * SUN', got {expr!r}")
    fields = expr.split()
    if len(fields) != 5:
        raise BadInputError(f"{what}: a cron expression has 5 fields (minute hour day-of-month month "
                            f"day-of-week), got {len(fields)} in {expr!r}")
    # Digits after '#' are ordinals (SUN#2, the second Sunday), not days.
    if re.search(r"\d", re.sub(r"#\d", "", fields[4])):
        raise BadInputError(f"{what}: write day-of-week with names (MON-FRI, SUN), not numbers, in {expr!r}: "
                            "0 is Sunday to cron but Monday to other schedulers")
    normalized = " ".join(fields)
    try:
        croniter(normalized, datetime(2026, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise BadInputError(f"{what}: {expr!r} never fires (no date matches it)") from None
    except (CroniterError, ValueError, KeyError) as exc:
        raise BadInputError(f"{what}: {expr!r} is not a valid cron expression ({exc})") from None
    return normalized


def _parse_table(name: str, raw: object, base: Schedule) -> Schedule:
    where = f"setting 'schedules.{name}'"
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: expected a table with {', '.join(sorted(_TABLE_FIELDS))}, got {raw!r}")
    unknown = set(raw) - _TABLE_FIELDS
    if unknown:
        raise BadInputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(_TABLE_FIELDS))}")
    changes: dict[str, Any] = {}
    if "cron" in raw:
        changes["cron"] = parse_cron(raw["cron"], f"setting 'schedules.{name}.cron'")
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            raise BadInputError(f"setting 'schedules.{name}.enabled': expected true or false, got {raw['enabled']!r}")
        changes["enabled"] = raw["enabled"]
    if "misfire_policy" in raw:
        if raw["misfire_policy"] not in MISFIRE_POLICIES:
            raise BadInputError(f"setting 'schedules.{name}.misfire_policy': expected one of "
                                f"{', '.join(MISFIRE_POLICIES)}, got {raw['misfire_policy']!r}")
        changes["misfire_policy"] = raw["misfire_policy"]
    if "grace_seconds" in raw:
        grace = raw["grace_seconds"]
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise BadInputError(f"setting 'schedules.{name}.grace_seconds': expected a number of seconds >= 0, "
                                f"got {grace!r}")
        changes["grace_seconds"] = float(grace)
    return Schedule(**{**asdict(base), **changes})


def configured_schedules(settings: Settings, *, with_edits: bool = True) -> list[Schedule]:
    """Every schedule in force, in the order of the maintenance sets; bad settings are refused by key."""
    timezone = settings.schedule_timezone
    parse_timezone(timezone)
    tables = settings.schedules
    if not isinstance(tables, dict):
        raise BadInputError(f"setting 'schedules': expected a table of schedules, got {tables!r}")
    unknown = set(tables) - set(DEFAULT_CRON)
    if unknown:
        raise BadInputError(f"setting 'schedules.{sorted(unknown)[0]}': unknown schedule; "
                            f"known: {', '.join(DEFAULT_CRON)}")
    schedules = {name: Schedule(name, cron, timezone) for name, cron in DEFAULT_CRON.items()}
    for name, raw in tables.items():
        schedules[name] = _parse_table(name, raw, schedules[name])
    if with_edits:
        with open_store(settings).read() as conn:
            edits = conn.execute(select(schedule_overrides)).all()
        for row in edits:
            if row.name not in schedules:
                continue
            current = schedules[row.name]
            schedules[row.name] = Schedule(**{
                **asdict(current),
                "cron": current.cron if row.cron is None else parse_cron(row.cron, f"schedule '{row.name}' (edited)"),
                "enabled": current.enabled if row.enabled is None else bool(row.enabled),
                "edited_by": row.updated_by, "edited_at": row.updated_at})
    return list(schedules.values())


def get_schedule(settings: Settings, name: str) -> Schedule:
    """The schedule called ``name`` as it is in force."""
    for schedule in configured_schedules(settings):
        if schedule.name == name:
            return schedule
    raise NotFoundError(f"no schedule named {name!r}; known: {', '.join(DEFAULT_CRON)}")


# -- fire times -------------------------------------------------------------------------------------

def _instant(value: datetime | float | int) -> datetime:
    """An aware UTC datetime from an epoch or an aware datetime (a naive one is ambiguous: refused)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime has no timezone; pass an aware one or an epoch")
        return value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _at_wall(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant of a local wall time: the first of a repeated one, past the jump for a skipped one."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _fire_times(schedule: Schedule, after: datetime, *, until: datetime | None = None,
                limit: int | None = None) -> list[datetime]:
    """Fire instants in (after, until], earliest first, at most ``limit`` of them (UTC)."""
    tz = schedule.tz
    it = croniter(schedule.cron, _wall(after, tz) - _SHIFT)
    found: set[datetime] = set()
    stop_wall = None if until is None else _wall(until, tz) + _SHIFT
    for _ in range(_MAX_STEPS):
        wall = it.get_next(datetime)
        if stop_wall is not None and wall > stop_wall:
            break
        instant = _at_wall(wall, tz)
        if instant > after and (until is None or instant <= until):
            found.add(instant)
        # Wall times near a daylight-saving change can come out of order by up to _SHIFT: stop only
        # once the search is that far past the last instant kept.
        if limit is not None and len(found) >= limit and wall > _wall(sorted(found)[limit - 1], tz) + _SHIFT:
            break
    ordered = sorted(found)
    return ordered if limit is None else ordered[:limit]


def next_runs(schedule: Schedule, after: datetime | float, count: int = 5) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, as aware datetimes in local time."""
    return [t.astimezone(schedule.tz) for t in _fire_times(schedule, _instant(after), limit=count)]


def previous_run(schedule: Schedule, at: datetime | float) -> datetime | None:
    """The latest fire time at or before ``at`` (local time), or None if the cron never fired before it."""
    tz, at = schedule.tz, _instant(at)
    it = croniter(schedule.cron, _wall(at, tz) + _SHIFT)
    best: datetime | None = None
    floor = _wall(at, tz) - _SHIFT
    for _ in range(_MAX_STEPS):
        try:
            wall = it.get_prev(datetime)
        except CroniterBadDateError:
            break
        instant = _at_wall(wall, tz)
        if instant <= at and (best is None or instant > best):
            best = instant
        if best is not None and wall < floor:
            break
    return None if best is None else best.astimezone(tz)


def due_firing(schedule: Schedule, last_fired: datetime | float | None, now: datetime | float) -> DueFiring | None:
    """The firing due at ``now`` since ``last_fired`` (None: never fired), or None if nothing is due.

    Every fire time missed since the last firing coalesces into one firing at the latest of them.
    A schedule that never fired looks back only over its grace (or the on-time margin under
    ``skip``), so a new worker does not record a backlog from before it existed.
    """
    if not schedule.enabled:
        return None
    now_at = _instant(now)
    on_time = ON_TIME_SECONDS
    window = max(schedule.grace_seconds, on_time) if schedule.misfire_policy == "run_once_late" else on_time
    lower = now_at - timedelta(seconds=window) if last_fired is None else _instant(last_fired)
    missed = _fire_times(schedule, lower, until=now_at, limit=COALESCE_LIMIT + 1)
    if not missed:
        return None
    latest = missed[-1] if len(missed) <= COALESCE_LIMIT else _instant(previous_run(schedule, now_at))
    late = (now_at - latest).total_seconds()
    # Before a schedule's first firing nothing was missed: earlier fire times in the window were not
    # anyone's to run.
    coalesced = 0 if last_fired is None else min(len(missed), COALESCE_LIMIT) - 1
    run = late <= window
    if run:
        reason = "on time" if late <= on_time else f"{_span(late)} late, within the grace of {_span(window)}"
    elif schedule.misfire_policy == "skip":
        reason = f"{_span(late)} late; the skip policy runs only on time"
    else:
        reason = f"{_span(late)} late, past the grace of {_span(window)}"
    if coalesced:
        more = "at least " if len(missed) > COALESCE_LIMIT else ""
        reason += f"; stands for {more}{coalesced} earlier missed fire time(s)"
    return DueFiring(schedule.name, latest.astimezone(schedule.tz), run, late, coalesced, reason)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- firings in the store ---------------------------------------------------------------------------

def record_firing(conn: Connection, name: str, fire_time: datetime | float, *, outcome: str = "run",
                  fired_at: float | None = None, late_seconds: float = 0.0, coalesced: int = 0,
                  detail: str = "") -> bool:
    """Record one firing inside the caller's transaction; False if it was already recorded (by anyone)."""
    values = {"schedule": name, "fire_time": int(_instant(fire_time).timestamp()),
              "fired_at": time.time() if fired_at is None else fired_at, "outcome": outcome,
              "late_seconds": float(late_seconds), "coalesced": int(coalesced), "detail": detail, "task_ids": "[]"}
    keys = ["schedule", "fire_time"]
    if conn.dialect.name == "postgresql":
        statement = pg_insert(schedule_firings).values(**values).on_conflict_do_nothing(index_elements=keys)
    elif conn.dialect.name == "sqlite":
        statement = sqlite_insert(schedule_firings).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:
        try:
            with conn.begin_nested():
                conn.execute(insert(schedule_firings).values(**values))
        except SqlIntegrityError:
            return False
        return True
    # An insert that did nothing returns no row (rowcount is not reliable once RETURNING is involved).
    return conn.execute(statement.returning(schedule_firings.c.id)).first() is not None


def last_fire_time(conn: Connection, name: str) -> int | None:
    """The latest recorded fire time of ``name`` (run or skipped), epoch seconds."""
    return conn.execute(select(func.max(schedule_firings.c.fire_time))
                        .where(schedule_firings.c.schedule == name)).scalar_one_or_none()


def _firing_dict(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    return {"schedule": row.schedule, "fire_time": datetime.fromtimestamp(row.fire_time, tz).isoformat(),
            "fire_ts": int(row.fire_time), "fired_at": row.fired_at, "outcome": row.outcome,
            "late_seconds": row.late_seconds, "coalesced": row.coalesced, "detail": row.detail,
            "task_ids": json.loads(row.task_ids)}


def _history(conn: Connection, schedule: Schedule, limit: int) -> list[dict[str, Any]]:
    table = schedule_firings
    rows = conn.execute(select(table).where(table.c.schedule == schedule.name)
                        .order_by(table.c.fire_time.desc()).limit(int(limit))).all()
    return [_firing_dict(row, schedule.tz) for row in rows]


def schedule_history(settings: Settings, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest firings of ``name``, newest first (fire time in the schedule's local time)."""
    schedule = get_schedule(settings, name)
    with open_store(settings).read() as conn:
        return _history(conn, schedule, limit)


def edit_schedule(settings: Settings, name: str, *, cron: str | None = None, enabled: bool | None = None,
                  actor: Actor, now: float | None = None) -> Schedule:
    """Store an operator's change of a schedule's cron or enabled flag (checked first); the new schedule."""
    actor.require_operator("editing a schedule")
    if name not in DEFAULT_CRON:
        raise NotFoundError(f"no schedule named {name!r}; known: {', '.join(DEFAULT_CRON)}")
    if cron is None and enabled is None:
        raise BadInputError(f"schedule '{name}': nothing to change (give a cron or enabled)")
    if cron is not None:
        cron = parse_cron(cron, f"schedule '{name}': cron")
    if enabled is not None and not isinstance(enabled, bool):
        raise BadInputError(f"schedule '{name}': enabled must be true or false, got {enabled!r}")
    table = schedule_overrides
    with open_store(settings).write() as conn:
        previous = conn.execute(select(table).where(table.c.name == name)).first()
        keep_cron = previous.cron if previous is not None else None
        keep_enabled = previous.enabled if previous is not None else None
        conn.execute(delete(table).where(table.c.name == name))
        conn.execute(insert(table).values(
            name=name, cron=cron if cron is not None else keep_cron,
            enabled=int(enabled) if enabled is not None else keep_enabled,
            updated_by=str(actor), updated_at=time.time() if now is None else now))
    return get_schedule(settings, name)


# -- the worker's tick ------------------------------------------------------------------------------

def tick(settings: Settings, now: float | None = None) -> list[str]:
    """Fire every due schedule once: record the firing and create its set's tasks in one transaction.

    Returns the ids of the tasks created. A firing another worker recorded first creates nothing
    here; a skipped firing is recorded with its reason and creates nothing either.
    """
    from opscore.operations.procedures import procedures_in
    from opscore.operations.tasks import Cause, create_task

    now = time.time() if now is None else now
    store = open_store(settings)
    created: list[str] = []
    for schedule in configured_schedules(settings):
        if not schedule.enabled:
            continue
        with store.read() as conn:
            last = last_fire_time(conn, schedule.name)
        due = due_firing(schedule, last, now)
        if due is None:
            continue
        stamp = due.fire_time.isoformat()
        with store.write() as conn:
            if not record_firing(conn, schedule.name, due.fire_time, outcome=due.outcome, fired_at=now,
                                 late_seconds=due.late_seconds, coalesced=due.coalesced, detail=due.reason):
                continue
            if not due.run:
                continue
            ids = []
            for proc in procedures_in(schedule.name):
                task = create_task(
                    settings, procedure=proc.name, created_by=f"schedule:{schedule.name}",
                    cause=Cause("schedule", f"{schedule.name}@{stamp}",
                                f"{schedule.name} maintenance due {stamp} ({schedule.cron}, {schedule.timezone}); "
                                f"{due.reason}"),
                    # One task per procedure of the firing: the fire time alone would fold them into one.
                    dedup_key=f"schedule:{schedule.name}:{due.fire_ts}:{proc.name}",
                    due_at=now, now=now, conn=conn)
                ids.append(task.id)
            conn.execute(update(schedule_firings)
                         .where(schedule_firings.c.schedule == schedule.name,
                                schedule_firings.c.fire_time == due.fire_ts)
                         .values(task_ids=json.dumps(ids)))
        created += ids
    return created


def describe_schedules(settings: Settings, now: float | None = None, *, runs: int = 5,
                       history: int = 5) -> list[dict[str, Any]]:
    """Each schedule with its next ``runs`` fire times (local ISO) and its last ``history`` firings."""
    now = time.time() if now is None else now
    described = []
    schedules = configured_schedules(settings)
    with open_store(settings).read() as conn:
        for schedule in schedules:
            entry = schedule.to_dict()
            entry["next_runs"] = [t.isoformat() for t in next_runs(schedule, now, runs)] if schedule.enabled else []
            entry["last_firings"] = _history(conn, schedule, history)
            described.append(entry)
    return described
