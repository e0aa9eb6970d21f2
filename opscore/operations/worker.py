"""Workers run the maintenance queue: claim a due task, run its procedure, record what happened.

Several workers may share one store and never run a task twice. A claim is one transaction: on
PostgreSQL the next due task is selected ``FOR UPDATE SKIP LOCKED`` (two workers never wait on, or take,
the same row); on SQLite the transaction holds the single write lock from its first statement. Either
way the claim is a conditional update from a queued status to ``running`` whose row count is checked.

A claim carries a lease that a heartbeat thread renews while the procedure runs. A worker that dies
(SIGKILL, a lost host) stops renewing it; once it lapses (at once, when the holder ran on this host
and its process is gone) the next claim records that attempt as ``lost`` and queues the task again.
A worker that lost its lease while still alive (frozen past the lease) notices at its next checkpoint
and writes nothing, so the task's new holder is the only one whose outcome counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import BadInputError, ConflictError, NotFoundError
from opscore.models.leases import Holder, hold_lapsed, this_host
from opscore.operations.procedures import ProcedureResult, TaskCancelled, TaskSkipped, get_procedure
from opscore.operations.tasks import (
    QUEUED,
    Cause,
    Task,
    create_task,
    due_condition,
    load_task,
    propagate_blocked,
    ready_condition,
)
from opscore.store import Store, open_store, task_attempts, tasks

log = logging.getLogger(__name__)
Clock = Callable[[], float]
Progress = Callable[[str, float | None], None]
TickHook = Callable[[Settings, float], Any]


class LeaseLost(Exception):
    """This worker no longer holds the task it runs: another worker took it back after the lease lapsed."""


class WorkerStopping(Exception):
    """The worker is shutting down; the task goes back to the queue to run again."""


def new_worker_id() -> str:
    return f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: the base delay doubled per attempt made, capped."""
    return min(settings.task_retry_backoff_max_seconds, settings.task_retry_backoff_seconds * 2 ** (attempt - 1))


def claim(settings: Settings, worker_id: str, now: float, *, task_id: str | None = None) -> Task | None:
    """Take the next due, ready task (or ``task_id``) for ``worker_id``; None when there is none."""
    store = open_store(settings)
    holder = Holder.me()
    if task_id is None and not _worth_claiming(store, now):
        return None
    with store.write() as conn:
        recover_lost(store, conn, settings, now)
        propagate_blocked(conn, now)
        if task_id is None:
            query = (select(tasks.c.id).where(due_condition(now), ready_condition())
                     .order_by(tasks.c.priority_rank, tasks.c.due_at, tasks.c.created_at).limit(1))
            if not store.is_sqlite:
                query = query.with_for_update(skip_locked=True, of=tasks)
            chosen = conn.execute(query).scalar()
            if chosen is None:
                return None
        else:
            chosen = _claimable(conn, task_id)
        claimed = conn.execute(
            update(tasks).where(tasks.c.id == chosen, tasks.c.status.in_(QUEUED)).values(
                status="running", lease_holder=worker_id, lease_host=holder.host, lease_pid=holder.pid,
                lease_expires_at=now + settings.task_lease_seconds, attempt_count=tasks.c.attempt_count + 1,
                updated_at=now, progress=None, note="started")
        ).rowcount
        if claimed != 1:
            return None
        number = conn.execute(select(tasks.c.attempt_count).where(tasks.c.id == chosen)).scalar_one()
        conn.execute(insert(task_attempts).values(task_id=chosen, number=number, worker=worker_id, started_at=now))
        return load_task(conn, chosen)


def _worth_claiming(store: Store, now: float) -> bool:
    """A read before the write lock: an idle worker polling an empty queue must not block the writers."""
    with store.read() as conn:
        return conn.execute(select(tasks.c.id).where(or_(
            and_(tasks.c.status.in_(QUEUED), tasks.c.due_at <= now), tasks.c.status == "running")).limit(1)
        ).first() is not None


def _claimable(conn: Connection, task_id: str) -> str:
    row = conn.execute(select(tasks.c.status, tasks.c.cancel_requested).where(tasks.c.id == task_id)
                       .with_for_update()).first()
    if row is None:
        raise NotFoundError(f"no task {task_id!r}")
    if row.status not in QUEUED:
        raise ConflictError(f"task {task_id} is {row.status}; only a queued task can run (retry a failed one)")
    ready = conn.execute(select(tasks.c.id).where(tasks.c.id == task_id, ready_condition())).scalar()
    if ready is None:
        raise ConflictError(f"task {task_id} waits for its dependencies to succeed")
    return task_id


def recover_lost(store: Store, conn: Connection, settings: Settings, now: float) -> list[str]:
    """Queue again (or fail, past their attempts) running tasks whose worker stopped holding them."""
    query = select(tasks).where(tasks.c.status == "running")
    if not store.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    recovered = []
    for row in conn.execute(query).all():
        expires = row.lease_expires_at if row.lease_expires_at is not None else 0.0
        if not hold_lapsed(Holder(row.lease_host or "", row.lease_pid or 0), expires, now):
            continue
        error = f"worker {row.lease_holder} stopped holding the task (its lease ran to {expires:.0f})"
        conn.execute(update(task_attempts).where(
            task_attempts.c.task_id == row.id, task_attempts.c.number == row.attempt_count,
            task_attempts.c.outcome.is_(None)).values(ended_at=now, outcome="lost", error=error))
        again = row.attempt_count < row.max_attempts and not row.cancel_requested
        status = "up_for_retry" if again else ("cancelled" if row.cancel_requested else "failed")
        conn.execute(update(tasks).where(tasks.c.id == row.id, tasks.c.status == "running",
                                         tasks.c.lease_holder == row.lease_holder).values(
            status=status, due_at=now, updated_at=now, lease_holder=None, lease_expires_at=None,
            note=error, **({} if again else {"dedup_key": None})))
        recovered.append(row.id)
        log.warning("task %s: %s; now %s", row.id, error, status)
    return recovered


class _Run:
    """What one attempt needs while it runs: the lease heartbeat and the checkpoint."""

    def __init__(self, settings: Settings, task: Task, worker_id: str, clock: Clock,
                 progress: Progress | None, stopping: threading.Event | None) -> None:
        self.settings = settings
        self.task = task
        self.worker_id = worker_id
        self.clock = clock
        self.progress = progress
        self.stopping = stopping
        self.lost = threading.Event()
        self.cancelled = threading.Event()
        self._done = threading.Event()
        self._last_look = 0.0
        self._beat = threading.Thread(target=self._heartbeat, name=f"opscore-task-{task.id}", daemon=True)

    def __enter__(self) -> _Run:
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._beat.join(timeout=5)

    def _renew(self, note: str | None = None, fraction: float | None = None) -> None:
        now = self.clock()
        values: dict[str, Any] = {"lease_expires_at": now + self.settings.task_lease_seconds}
        if note is not None:
            values.update(note=note[:500], progress=fraction, updated_at=now)
        with open_store(self.settings).write() as conn:
            held = conn.execute(update(tasks).where(
                tasks.c.id == self.task.id, tasks.c.status == "running", tasks.c.lease_holder == self.worker_id,
            ).values(**values)).rowcount
            if held != 1:
                self.lost.set()
                return
            if conn.execute(select(tasks.c.cancel_requested).where(tasks.c.id == self.task.id)).scalar():
                self.cancelled.set()

    def _heartbeat(self) -> None:
        interval = max(0.05, self.settings.task_lease_seconds / 3)
        while not self._done.wait(interval):
            try:
                self._renew()
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the heartbeat; the next beat retries
                log.exception("task %s: lease renewal failed", self.task.id)

    def checkpoint(self, note: str = "", progress: float | None = None) -> None:
        """Between a procedure's steps: record progress, and stop if cancelled, stopping or no longer ours."""
        if self.progress is not None:
            self.progress(note, progress)
        now = time.monotonic()
        if now - self._last_look >= 0.2 or self.cancelled.is_set():
            self._last_look = now
            self._renew(note, progress)
        if self.lost.is_set():
            raise LeaseLost(f"task {self.task.id} was taken back from {self.worker_id}")
        if self.cancelled.is_set():
            raise TaskCancelled(f"task {self.task.id} was cancelled")
        if self.stopping is not None and self.stopping.is_set():
            raise WorkerStopping(f"worker {self.worker_id} is stopping")


def run_claimed(settings: Settings, task: Task, worker_id: str, *, clock: Clock = time.time,
                progress: Progress | None = None, stopping: threading.Event | None = None) -> Task:
    """Run a task this worker has claimed and record the attempt's outcome."""
    started = clock()
    outcome: str
    error: str | None = None
    result: ProcedureResult | None = None
    with _Run(settings, task, worker_id, clock, progress, stopping) as run:
        try:
            procedure = get_procedure(task.procedure)
            run.checkpoint("started", 0.0)
            result = procedure.run(settings, dict(task.params), run.checkpoint)
            if run.lost.is_set():
                raise LeaseLost(f"task {task.id} was taken back from {worker_id}")
            outcome = "success"
        except LeaseLost as exc:
            log.warning("%s; its outcome is not recorded", exc)
            return get_task_quietly(settings, task.id, task)
        except TaskCancelled:
            outcome = "cancelled"
        except TaskSkipped as exc:
            outcome, error = "skipped", str(exc) or "nothing to do"
        except WorkerStopping as exc:
            outcome, error = "interrupted", str(exc)
        except BadInputError as exc:
            outcome, error = "bad_input", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - whatever a procedure raises is that attempt's failure
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
            # The attempt keeps the error; the traceback is for whoever debugs the procedure.
            log.warning("task %s (%s) failed: %s", task.id, task.procedure, error)
            log.debug("task %s traceback", task.id, exc_info=True)
    return _finish(settings, task, worker_id, started, clock(), outcome, error, result)


def get_task_quietly(settings: Settings, task_id: str, fallback: Task) -> Task:
    try:
        with open_store(settings).read() as conn:
            return load_task(conn, task_id)
    except NotFoundError:
        return fallback


def _finish(settings: Settings, task: Task, worker_id: str, started: float, ended: float, outcome: str,
            error: str | None, result: ProcedureResult | None) -> Task:
    still_found: list[str] = []
    if result is not None and task.params.get("_resolves"):
        summaries = {f.summary for f in result.findings}
        still_found = [s for s in _as_list(task.params["_resolves"]) if s in summaries]
        if still_found:
            outcome, error = "failed", "the finding is still there: " + "; ".join(still_found)
    attempt = task.attempts[-1].number if task.attempts else 1
    values: dict[str, Any] = {"updated_at": ended, "lease_holder": None, "lease_expires_at": None}
    if outcome == "success":
        values.update(status="success", actual_seconds=ended - started, progress=1.0, note="done")
    elif outcome == "cancelled":
        values.update(status="cancelled", note="cancelled at a checkpoint")
    elif outcome == "skipped":
        values.update(status="skipped", note=error or "nothing to do")
    elif outcome == "interrupted" or (outcome == "failed" and not still_found and attempt < task.max_attempts):
        delay = 0.0 if outcome == "interrupted" else retry_delay(settings, attempt)
        values.update(status="up_for_retry", due_at=ended + delay,
                      note=f"attempt {attempt} {outcome}; next in {delay:.0f} s")
    else:
        values.update(status="failed", note=f"attempt {attempt} {outcome}")
    if values["status"] not in QUEUED:
        values["dedup_key"] = None
    if result is not None:
        values["result"] = _json(result.to_dict())
    with open_store(settings).write() as conn:
        held = conn.execute(update(tasks).where(
            tasks.c.id == task.id, tasks.c.status == "running", tasks.c.lease_holder == worker_id,
        ).values(**values)).rowcount
        if held != 1:
            log.warning("task %s: taken back from %s before it finished; its outcome is not recorded",
                        task.id, worker_id)
            return load_task(conn, task.id)
        conn.execute(update(task_attempts).where(
            task_attempts.c.task_id == task.id, task_attempts.c.number == attempt).values(
            ended_at=ended, outcome=outcome, error=error))
        if result is not None:
            open_follow_ups(settings, conn, task, result, ended)
        propagate_blocked(conn, ended)
        return load_task(conn, task.id)


def open_follow_ups(settings: Settings, conn: Connection, task: Task, result: ProcedureResult,
                    now: float) -> list[str]:
    """A task for each finding that asks for one; priority from its severity, one open task per finding.

    A finding that names its own procedure runs it now; one that does not re-runs the procedure that
    found it after ``follow_up_check_seconds``, and that check succeeds only once the finding is gone.
    """
    opened = []
    for finding in result.findings:
        if finding.follow_up is None:
            continue
        own = finding.follow_up_procedure
        if own is not None:
            try:
                get_procedure(own)
            except BadInputError:
                log.warning("finding %r names unknown procedure %r; re-checking instead", finding.summary, own)
                own = None
        digest = hashlib.sha1(f"{task.procedure}|{finding.summary}".encode()).hexdigest()[:20]
        follow_up = create_task(
            settings,
            procedure=own or task.procedure,
            params=dict(finding.follow_up_params) if own else {**task.params, "_resolves": finding.summary},
            title=f"{finding.follow_up.capitalize()}: {finding.summary}"[:300],
            type=finding.follow_up,
            priority=finding.severity,
            due_at=now if own else now + settings.follow_up_check_seconds,
            status="pending" if own else "scheduled",
            created_by=f"task:{task.id}",
            cause=Cause("finding", task.id, finding.summary),
            dedup_key=f"finding:{task.procedure}:{digest}",
            parent_task=task.id,
            now=now,
            conn=conn,
        )
        opened.append(follow_up.id)
    return opened


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, allow_nan=False, default=str)


def execute_task(settings: Settings, task_id: str, *, worker_id: str | None = None, clock: Clock = time.time,
                 progress: Progress | None = None, actor: Actor | None = None) -> Task:
    """Claim ``task_id`` and run it in this process (``opscore tasks run``, the page's "Run now")."""
    if actor is not None:
        actor.require_operator("running a task")
    worker_id = worker_id or new_worker_id()
    task = claim(settings, worker_id, clock(), task_id=task_id)
    if task is None:
        raise ConflictError(f"task {task_id} was taken by another worker")
    return run_claimed(settings, task, worker_id, clock=clock, progress=progress)


def run_one(settings: Settings, *, worker_id: str | None = None, clock: Clock = time.time,
            stopping: threading.Event | None = None) -> Task | None:
    """Claim the next due task and run it; None when nothing is due."""
    worker_id = worker_id or new_worker_id()
    task = claim(settings, worker_id, clock())
    if task is None:
        return None
    return run_claimed(settings, task, worker_id, clock=clock, stopping=stopping)


def run_worker(settings: Settings, *, stop: threading.Event, poll_seconds: float | None = None,
               tick_hooks: Iterable[TickHook] = (), worker_id: str | None = None,
               clock: Clock = time.time, max_tasks: int | None = None, until_idle: bool = False) -> int:
    """Run the queue until ``stop`` is set (or, ``until_idle``, the queue has nothing due).

    Each round calls the tick hooks (the schedules fire there), then drains the due tasks.
    """
    worker_id = worker_id or new_worker_id()
    poll = settings.worker_poll_seconds if poll_seconds is None else poll_seconds
    hooks = list(tick_hooks)
    ran = 0
    while not stop.is_set():
        for hook in hooks:
            try:
                hook(settings, clock())
            except Exception:  # noqa: BLE001 - a failing hook (a schedule) must not stop the queue
                log.exception("worker tick hook %s failed", getattr(hook, "__name__", hook))
        while not stop.is_set():
            try:
                task = run_one(settings, worker_id=worker_id, clock=clock, stopping=stop)
            except Exception:  # noqa: BLE001 - a store outage: wait a round and look again
                log.exception("worker %s could not claim a task", worker_id)
                break
            if task is None:
                break
            ran += 1
            if max_tasks is not None and ran >= max_tasks:
                return ran
        if until_idle:
            return ran
        stop.wait(poll)
    return ran


def tick_hooks(settings: Settings, *, schedules: bool = True) -> list[TickHook]:
    """What a worker does each round besides the queue: fire the maintenance schedules that are due."""
    hooks: list[TickHook] = []
    if schedules:
        try:
            from opscore.operations.schedules import tick
        except ImportError:
            return hooks
        hooks.append(tick)
    return hooks


class TaskWorker:
    """A worker thread inside another process (``opscore serve``), stopped with it."""

    def __init__(self, settings: Settings, *, tick_hooks: Iterable[TickHook] = ()) -> None:
        self.settings = settings
        self.worker_id = new_worker_id()
        self._hooks = list(tick_hooks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opscore-worker", daemon=True)

    def _run(self) -> None:
        run_worker(self.settings, stop=self._stop, tick_hooks=self._hooks, worker_id=self.worker_id)

    def start(self) -> TaskWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)
