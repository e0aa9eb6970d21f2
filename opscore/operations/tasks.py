"""The maintenance queue: tasks that run a registered procedure, with priority, dependencies and history.

A task names a procedure and its parameters (never code), a type (preventive, corrective, adaptive,
perfective) and a priority; the queue orders by priority, then due time. Every attempt is kept with
its start, end, outcome and error, and the result is what the procedure found. Who or what created a
task is its ``cause``: an operator, a schedule, an alert, a trigger, or a finding of another task.

Statuses follow Airflow's: ``pending`` (waiting for its due time or its dependencies), ``scheduled``
(a follow-up check waiting for its time), ``running``, ``success``, ``failed``, ``up_for_retry``,
``cancelled``, ``upstream_failed`` (a dependency failed or was cancelled) and ``skipped`` (the
procedure found nothing to do; its dependents are skipped too). Running tasks are the worker's
(:mod:`opscore.operations.worker`); this module creates, reads and steers them.

A ``dedup_key`` keeps one *open* task per key: creating a task with the key of one that has not ended
returns that task instead. The key is released when the task ends, so a finding seen again next week
opens a new task, not a second one while the first is still open.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, ConflictError, NotFoundError
from opscore.operations.alert_rules import parse_duration
from opscore.operations.procedures import TASK_TYPES, get_procedure
from opscore.store import open_store, task_attempts, task_dependencies, tasks

PRIORITIES = ("critical", "high", "medium", "low")
STATUSES = ("pending", "scheduled", "running", "success", "failed", "up_for_retry", "cancelled",
            "upstream_failed", "skipped")
CAUSE_KINDS = ("operator", "schedule", "alert", "trigger", "finding")
# Waiting for a worker; a worker claims among these once due.
QUEUED = ("pending", "scheduled", "up_for_retry")
OPEN = (*QUEUED, "running")
ENDED = ("success", "failed", "cancelled", "upstream_failed", "skipped")
# A dependency in one of these can never succeed, so its dependents cannot run.
BLOCKING = {"failed": "upstream_failed", "cancelled": "upstream_failed", "upstream_failed": "upstream_failed",
            "skipped": "skipped"}


@dataclass(frozen=True)
class Cause:
    """Why a task exists: ``kind`` of creator, the creator's ``id`` (an alert id, a schedule firing...)."""

    kind: str
    id: str
    summary: str

    def __post_init__(self) -> None:
        if self.kind not in CAUSE_KINDS:
            raise BadInputError(f"cause kind must be one of {', '.join(CAUSE_KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class Attempt:
    """One run of a task by one worker; ``outcome`` is None while it runs."""

    number: int
    worker: str
    started_at: float
    ended_at: float | None
    outcome: str | None
    error: str | None


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    procedure: str
    params: dict[str, Any]
    type: str
    priority: str
    status: str
    due_at: float
    depends_on: list[str]
    created_by: str
    cause: Cause
    attempts: list[Attempt]
    result: dict[str, Any] | None
    estimated_seconds: float
    actual_seconds: float | None
    max_attempts: int
    created_at: float
    updated_at: float
    progress: float | None
    note: str
    cancel_requested: bool
    dedup_key: str | None
    parent_task: str | None = None
    lease_holder: str | None = field(default=None, repr=False)

    @property
    def error(self) -> str | None:
        """The last attempt's error, if it failed."""
        return self.attempts[-1].error if self.attempts else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /maintenance/tasks`` (DESIGN.md), plus the queue's bookkeeping."""
        data = asdict(self)
        data.pop("lease_holder")
        data["worker"] = self.lease_holder if self.status == "running" else None
        return data


def due_time(text: str, now: float) -> float:
    """When a task is due: ``now``, a delay from now (``30m``, ``2h``, ``1d``) or a time (UTC unless it says)."""
    given = text.strip().lower()
    if given in ("", "now"):
        return now
    try:
        return now + parse_duration(given.removeprefix("in "), "due")
    except BadInputError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(f"due: expected now, a delay (30m, 2h, 1d) or a time like 2026-12-03T18:00, "
                            f"got {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def priority_rank(priority: str) -> int:
    return PRIORITIES.index(priority)


def new_task_id() -> str:
    return uuid.uuid4().hex[:12]


def create_task(
    settings: Settings,
    *,
    procedure: str,
    params: dict[str, Any] | None = None,
    title: str | None = None,
    type: str | None = None,  # noqa: A002 - the word the design uses
    priority: str = "medium",
    due_at: float | None = None,
    depends_on: Sequence[str] = (),
    created_by: str | None = None,
    actor: Actor | None = None,
    cause: Cause | None = None,
    dedup_key: str | None = None,
    max_attempts: int | None = None,
    parent_task: str | None = None,
    status: str = "pending",
    now: float | None = None,
    conn: Connection | None = None,
) -> Task:
    """Queue a task running ``procedure`` with ``params``; inside ``conn``'s transaction when given.

    Bad input (unknown procedure, type, priority or dependency, parameters that are not JSON) is
    refused before anything is written. With ``dedup_key``, an open task of the same key is returned
    instead of a new one. A person creating a task passes ``actor`` (an operator); the system's
    creators (schedules, alerts, triggers, findings) pass ``created_by`` alone.
    """
    now = time.time() if now is None else now
    if actor is not None:
        actor.require_operator("creating a maintenance task")
        created_by = created_by or f"operator:{actor.name}"
    if not created_by or not created_by.strip():
        raise BadInputError("created_by must say who or what creates the task")
    proc = get_procedure(procedure)
    task_type = type or proc.task_type
    if task_type not in TASK_TYPES:
        raise BadInputError(f"task type must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")
    if priority not in PRIORITIES:
        raise BadInputError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    if status not in ("pending", "scheduled"):
        raise BadInputError(f"a new task is pending or scheduled, not {status!r}")
    attempts = settings.task_max_attempts if max_attempts is None else int(max_attempts)
    if attempts < 1:
        raise BadInputError(f"max_attempts must be at least 1, got {attempts}")
    if due_at is not None and not math.isfinite(due_at):
        raise BadInputError(f"due_at must be a time, got {due_at!r}")
    try:
        params_json = json.dumps(params or {}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"task parameters must be JSON (strings, numbers, lists, tables): {exc}") from None
    cause = cause or Cause("operator", created_by, title or proc.title)
    if conn is None:
        with open_store(settings).write() as own:
            return create_task(settings, procedure=procedure, params=params, title=title, type=task_type,
                               priority=priority, due_at=due_at, depends_on=depends_on, created_by=created_by,
                               cause=cause, dedup_key=dedup_key, max_attempts=attempts, parent_task=parent_task,
                               status=status, now=now, conn=own)
    if dedup_key is not None:
        existing = conn.execute(select(tasks.c.id).where(tasks.c.dedup_key == dedup_key)).scalar()
        if existing is not None:
            return load_task(conn, existing)
    upstream = list(dict.fromkeys(depends_on))
    if upstream:
        found = set(conn.execute(select(tasks.c.id).where(tasks.c.id.in_(upstream))).scalars())
        missing = [u for u in upstream if u not in found]
        if missing:
            raise BadInputError(f"depends on unknown task(s): {', '.join(missing)}")
    task_id = new_task_id()
    row = dict(
        id=task_id, title=title or proc.title, procedure=proc.name, params=params_json, type=task_type,
        priority=priority, priority_rank=priority_rank(priority), status=status,
        due_at=now if due_at is None else float(due_at), created_at=now, updated_at=now, created_by=created_by,
        cause_kind=cause.kind, cause_id=str(cause.id), cause_summary=cause.summary, dedup_key=dedup_key,
        parent_task=parent_task, max_attempts=attempts, attempt_count=0,
        estimated_seconds=_estimate(conn, proc.name, proc.estimated_seconds), cancel_requested=0, note="",
    )
    if dedup_key is not None:
        # Two creators racing on one key: the unique index lets one insert; the other reads the winner.
        try:
            with conn.begin_nested():
                conn.execute(insert(tasks).values(**row))
        except SqlIntegrityError:
            existing = conn.execute(select(tasks.c.id).where(tasks.c.dedup_key == dedup_key)).scalar()
            if existing is None:
                raise
            return load_task(conn, existing)
    else:
        conn.execute(insert(tasks).values(**row))
    if upstream:
        conn.execute(insert(task_dependencies), [{"task_id": task_id, "depends_on": u} for u in upstream])
    return load_task(conn, task_id)


def _estimate(conn: Connection, procedure: str, default: float) -> float:
    """The median of the procedure's last ten successful runs: what it really takes here."""
    recent = conn.execute(
        select(tasks.c.actual_seconds).where(tasks.c.procedure == procedure, tasks.c.status == "success",
                                             tasks.c.actual_seconds.is_not(None))
        .order_by(tasks.c.updated_at.desc()).limit(10)
    ).scalars().all()
    return float(statistics.median(recent)) if recent else float(default)


def get_task(settings: Settings, task_id: str) -> Task:
    with open_store(settings).read() as conn:
        return load_task(conn, task_id)


def list_tasks(
    settings: Settings,
    *,
    status: str | Sequence[str] | None = None,
    type: str | None = None,  # noqa: A002
    priority: str | None = None,
    created_by_prefix: str | None = None,
    limit: int = 200,
) -> list[Task]:
    """Tasks in queue order: open ones by priority then due time, then ended ones, newest first."""
    statuses = [status] if isinstance(status, str) else list(status or [])
    for value, allowed, what in ([(s, STATUSES, "status") for s in statuses]
                                 + [(type, TASK_TYPES, "type"), (priority, PRIORITIES, "priority")]):
        if value is not None and value not in allowed:
            raise BadInputError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    conditions = []
    if statuses:
        conditions.append(tasks.c.status.in_(statuses))
    if type:
        conditions.append(tasks.c.type == type)
    if priority:
        conditions.append(tasks.c.priority == priority)
    if created_by_prefix:
        conditions.append(tasks.c.created_by.startswith(created_by_prefix, autoescape=True))
    with open_store(settings).read() as conn:
        open_rows = conn.execute(
            select(tasks).where(tasks.c.status.in_(OPEN), *conditions)
            .order_by(tasks.c.priority_rank, tasks.c.due_at, tasks.c.created_at).limit(limit)
        ).all()
        ended_rows = conn.execute(
            select(tasks).where(tasks.c.status.in_(ENDED), *conditions)
            .order_by(tasks.c.updated_at.desc()).limit(max(0, limit - len(open_rows)))
        ).all()
        return _build(conn, [*open_rows, *ended_rows])


def cancel_task(settings: Settings, task_id: str, *, actor: Actor, now: float | None = None) -> Task:
    """Cancel a queued task at once, or ask a running one to stop at its next checkpoint."""
    actor.require_operator("cancelling a task")
    now = time.time() if now is None else now
    with open_store(settings).write() as conn:
        task = _locked(conn, task_id)
        if task.status in QUEUED:
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(
                status="cancelled", dedup_key=None, updated_at=now, note=f"cancelled by {actor.name}"))
            propagate_blocked(conn, now)
        elif task.status == "running":
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(
                cancel_requested=1, updated_at=now, note=f"cancel requested by {actor.name}"))
        else:
            raise ConflictError(f"task {task_id} has ended ({task.status}); there is nothing to cancel")
        return load_task(conn, task_id)


def retry_task(settings: Settings, task_id: str, *, actor: Actor, now: float | None = None) -> Task:
    """Queue an ended task that did not succeed once more, due now, with a fresh count of attempts."""
    actor.require_operator("retrying a task")
    now = time.time() if now is None else now
    with open_store(settings).write() as conn:
        task = _locked(conn, task_id)
        if task.status not in ("failed", "cancelled", "upstream_failed", "skipped"):
            raise ConflictError(f"task {task_id} is {task.status}; only a failed, cancelled, upstream_failed "
                                f"or skipped task can be retried")
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(
            status="pending", due_at=now, updated_at=now, cancel_requested=0, progress=None,
            max_attempts=len(task.attempts) + max(1, settings.task_max_attempts), note=f"retried by {actor.name}"))
        # Dependents that were blocked by this task wait for it again.
        for dependent in _dependents(conn, task_id):
            row = conn.execute(select(tasks.c.status).where(tasks.c.id == dependent)).scalar()
            if row in ("upstream_failed", "skipped"):
                conn.execute(update(tasks).where(tasks.c.id == dependent).values(
                    status="pending", updated_at=now, note=f"upstream {task_id} retried by {actor.name}"))
        return load_task(conn, task_id)


def run_task_now(settings: Settings, task_id: str, *, actor: Actor, now: float | None = None) -> Task:
    """Make a queued task due now and first in its priority: the next free worker takes it."""
    actor.require_operator("running a task now")
    now = time.time() if now is None else now
    with open_store(settings).write() as conn:
        task = _locked(conn, task_id)
        if task.status not in QUEUED:
            raise ConflictError(f"task {task_id} is {task.status}; only a queued task can be run now "
                                f"(retry a failed one)")
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(
            status="pending" if task.status == "scheduled" else task.status, due_at=min(task.due_at, now),
            updated_at=now, note=f"run now by {actor.name}"))
        return load_task(conn, task_id)


def propagate_blocked(conn: Connection, now: float) -> int:
    """Mark queued tasks whose dependency can never succeed; repeated so chains settle at once."""
    changed = 0
    for _ in range(100):
        upstream = tasks.alias("upstream")
        rows = conn.execute(
            select(task_dependencies.c.task_id, upstream.c.status, upstream.c.id)
            .join(tasks, tasks.c.id == task_dependencies.c.task_id)
            .join(upstream, upstream.c.id == task_dependencies.c.depends_on)
            .where(tasks.c.status.in_(QUEUED), upstream.c.status.in_(list(BLOCKING)))
        ).all()
        if not rows:
            break
        for task_id, upstream_status, upstream_id in rows:
            changed += conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.status.in_(QUEUED)).values(
                status=BLOCKING[upstream_status], dedup_key=None, updated_at=now,
                note=f"upstream task {upstream_id} ended {upstream_status}")).rowcount
    return changed


def ready_condition():  # type: ignore[no-untyped-def]
    """SQL: every dependency of the task succeeded (or it has none)."""
    upstream = tasks.alias("ready_upstream")
    unfinished = (select(task_dependencies.c.task_id)
                  .join(upstream, upstream.c.id == task_dependencies.c.depends_on)
                  .where(task_dependencies.c.task_id == tasks.c.id, upstream.c.status != "success"))
    return ~unfinished.exists()


def due_condition(now: float):  # type: ignore[no-untyped-def]
    return and_(tasks.c.status.in_(QUEUED), tasks.c.due_at <= now, tasks.c.cancel_requested == 0)


def _dependents(conn: Connection, task_id: str) -> list[str]:
    return list(conn.execute(select(task_dependencies.c.task_id)
                             .where(task_dependencies.c.depends_on == task_id)).scalars())


def _locked(conn: Connection, task_id: str) -> Task:
    row = conn.execute(select(tasks.c.id).where(tasks.c.id == task_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no task {task_id!r}")
    return load_task(conn, task_id)


def load_task(conn: Connection, task_id: str) -> Task:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    if row is None:
        raise NotFoundError(f"no task {task_id!r}")
    return _build(conn, [row])[0]


def _build(conn: Connection, rows: Sequence[Any]) -> list[Task]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    deps: dict[str, list[str]] = {i: [] for i in ids}
    attempts: dict[str, list[Attempt]] = {i: [] for i in ids}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for d in conn.execute(select(task_dependencies).where(task_dependencies.c.task_id.in_(part))):
            deps[d.task_id].append(d.depends_on)
        for a in conn.execute(select(task_attempts).where(task_attempts.c.task_id.in_(part))
                              .order_by(task_attempts.c.task_id, task_attempts.c.number)):
            attempts[a.task_id].append(Attempt(a.number, a.worker, a.started_at, a.ended_at, a.outcome, a.error))
    return [
        Task(
            id=r.id, title=r.title, procedure=r.procedure, params=json.loads(r.params), type=r.type,
            priority=r.priority, status=r.status, due_at=r.due_at, depends_on=sorted(deps[r.id]),
            created_by=r.created_by, cause=Cause(r.cause_kind, r.cause_id, r.cause_summary),
            attempts=attempts[r.id], result=json.loads(r.result) if r.result else None,
            estimated_seconds=r.estimated_seconds, actual_seconds=r.actual_seconds, max_attempts=r.max_attempts,
            created_at=r.created_at, updated_at=r.updated_at, progress=r.progress, note=r.note or "",
            cancel_requested=bool(r.cancel_requested), dedup_key=r.dedup_key, parent_task=r.parent_task,
            lease_holder=r.lease_holder,
        )
        for r in rows
    ]
