"""The maintenance queue with an injected clock: order, dependencies, retries, cancellation, follow-ups."""

from __future__ import annotations

import threading

import pytest

from opscore.access.actors import Actor
from opscore.config import replace
from opscore.exceptions import BadInputError, ConflictError, NotFoundError, PermissionDenied
from opscore.operations import worker
from opscore.operations.tasks import (
    Cause,
    cancel_task,
    create_task,
    due_time,
    get_task,
    list_tasks,
    retry_task,
    run_task_now,
)
from tests.conftest import OPERATOR
from tests.operations import queue_probes

T0 = 1_800_000_000.0


def _add(settings, label, **kw):
    kw.setdefault("created_by", "operator:tester")
    kw.setdefault("now", T0)
    return create_task(settings, procedure=kw.pop("procedure", "probe_record"), params={"label": label,
                       **kw.pop("params", {})}, **kw)


def _drain(settings, now):
    ran = []
    while (task := worker.run_one(settings, worker_id="w1", clock=lambda: now)) is not None:
        ran.append(task.params["label"])
    return ran


def test_priority_first_then_due_time(workspace):
    queue_probes.RUNS.clear()
    _add(workspace, "low-early", priority="low", due_at=T0 - 50)
    _add(workspace, "high-late", priority="high", due_at=T0 - 10)
    _add(workspace, "critical", priority="critical", due_at=T0 - 5)
    _add(workspace, "high-early", priority="high", due_at=T0 - 20)
    _add(workspace, "not-yet", priority="critical", due_at=T0 + 60)
    assert [t.params["label"] for t in list_tasks(workspace, status="pending")] == [
        "critical", "not-yet", "high-early", "high-late", "low-early"]
    assert _drain(workspace, T0) == ["critical", "high-early", "high-late", "low-early"]
    assert get_task(workspace, list_tasks(workspace, status="pending")[0].id).params["label"] == "not-yet"
    assert _drain(workspace, T0 + 61) == ["not-yet"]


def test_a_task_waits_for_its_dependency_and_fails_with_it(workspace):
    first = _add(workspace, "first", procedure="probe_flaky", params={"failures": 9}, max_attempts=1)
    second = _add(workspace, "second", depends_on=[first.id])
    third = _add(workspace, "third", depends_on=[second.id])
    ok = _add(workspace, "ok", priority="high")
    after_ok = _add(workspace, "after-ok", depends_on=[ok.id], priority="critical")
    # The critical task cannot run before its dependency: the queue takes "ok" first.
    assert _drain(workspace, T0) == ["ok", "after-ok", "first"]
    assert get_task(workspace, first.id).status == "failed"
    assert get_task(workspace, second.id).status == "upstream_failed"
    assert get_task(workspace, third.id).status == "upstream_failed"
    assert "upstream task" in get_task(workspace, third.id).note
    assert get_task(workspace, after_ok.id).status == "success"


def test_unknown_dependency_procedure_priority_are_refused(workspace):
    with pytest.raises(BadInputError, match="unknown task"):
        _add(workspace, "x", depends_on=["nope"])
    with pytest.raises(BadInputError, match="unknown procedure 'nope'"):
        create_task(workspace, procedure="nope", created_by="operator:tester")
    with pytest.raises(BadInputError, match="priority must be one of"):
        _add(workspace, "x", priority="urgent")
    with pytest.raises(BadInputError, match="task type"):
        _add(workspace, "x", type="cosmetic")
    with pytest.raises(BadInputError, match="JSON"):
        _add(workspace, "x", params={"when": object()})
    assert list_tasks(workspace) == []


def test_retries_follow_the_backoff_and_stop_at_the_limit(workspace):
    settings = replace(workspace, task_retry_backoff_seconds=180.0, task_retry_backoff_max_seconds=500.0)
    task = _add(settings, "flaky-a", procedure="probe_flaky", params={"failures": 9}, max_attempts=4)
    now = T0
    dues = []
    for _ in range(4):
        ran = worker.run_one(settings, worker_id="w1", clock=lambda now=now: now)
        assert ran is not None
        dues.append(ran.due_at - now)
        # Not due again a second before the backoff ends.
        assert worker.run_one(settings, worker_id="w1", clock=lambda now=now: now + dues[-1] - 1) is None
        now += dues[-1]
    final = get_task(settings, task.id)
    assert dues[:3] == [180.0, 360.0, 500.0]  # doubling, capped
    assert final.status == "failed"
    assert [a.outcome for a in final.attempts] == ["failed"] * 4
    assert "planted failure 4" in final.attempts[-1].error
    assert worker.run_one(settings, worker_id="w1", clock=lambda: now + 10_000) is None


def test_a_retry_that_succeeds_keeps_every_attempt(workspace):
    task = _add(workspace, "flaky-b", procedure="probe_flaky", params={"failures": 1})
    worker.run_one(workspace, worker_id="w1", clock=lambda: T0)
    done = worker.run_one(workspace, worker_id="w1", clock=lambda: T0 + 180)
    assert done.id == task.id and done.status == "success"
    assert [a.outcome for a in done.attempts] == ["failed", "success"]
    assert done.result["figures"] == {"runs": 2}


def test_cancelling_a_running_task_stops_it_at_its_next_checkpoint(workspace):
    queue_probes.RUNS.clear()
    task = _add(workspace, "long", params={"steps": 200, "step_seconds": 0.02})
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(task=worker.execute_task(workspace, task.id)))
    thread.start()
    for _ in range(500):
        if "long" in queue_probes.RUNS:  # the procedure has begun its steps
            break
        threading.Event().wait(0.01)
    cancel_task(workspace, task.id, actor=OPERATOR)
    thread.join(timeout=30)
    done = result["task"]
    assert done.status == "cancelled"
    assert done.attempts[-1].outcome == "cancelled"
    assert queue_probes.RUNS.count("long") == 1  # started, never reached its end
    with pytest.raises(ConflictError, match="nothing to cancel"):
        cancel_task(workspace, task.id, actor=OPERATOR)


def test_cancel_retry_and_run_now_of_queued_tasks(workspace):
    later = _add(workspace, "later", due_at=T0 + 3600)
    assert run_task_now(workspace, later.id, actor=OPERATOR, now=T0).due_at == T0
    cancelled = cancel_task(workspace, later.id, actor=OPERATOR, now=T0)
    assert cancelled.status == "cancelled"
    assert worker.run_one(workspace, worker_id="w1", clock=lambda: T0 + 1) is None
    again = retry_task(workspace, later.id, actor=OPERATOR, now=T0 + 2)
    assert again.status == "pending"
    assert worker.run_one(workspace, worker_id="w1", clock=lambda: T0 + 3).status == "success"
    with pytest.raises(ConflictError):
        retry_task(workspace, later.id, actor=OPERATOR)
    with pytest.raises(NotFoundError):
        get_task(workspace, "missing")


def test_a_dedup_key_keeps_one_open_task(workspace):
    a = _add(workspace, "d", dedup_key="alert:7", cause=Cause("alert", "7", "drift"))
    b = _add(workspace, "d", dedup_key="alert:7", cause=Cause("alert", "7", "drift"))
    assert a.id == b.id and len(list_tasks(workspace)) == 1
    worker.run_one(workspace, worker_id="w1", clock=lambda: T0)
    c = _add(workspace, "d", dedup_key="alert:7")
    assert c.id != a.id  # the first one ended: its key is free again


def test_skipped_is_not_failed_and_skips_dependents(workspace):
    skip = _add(workspace, "s", procedure="probe_skipper")
    after = _add(workspace, "after", depends_on=[skip.id])
    worker.run_one(workspace, worker_id="w1", clock=lambda: T0)
    assert get_task(workspace, skip.id).status == "skipped"
    assert get_task(workspace, skip.id).attempts[-1].error == "no backup to drill"
    assert get_task(workspace, after.id).status == "skipped"


def test_findings_open_follow_up_tasks_that_check_the_finding_is_gone(workspace):
    settings = replace(workspace, follow_up_check_seconds=3600.0)
    plant = [["token file is world-readable", "high", "corrective"], ["a note", "low", None]]
    source = _add(settings, "finder", procedure="probe_finder", params={"plant": plant})
    worker.run_one(settings, worker_id="w1", clock=lambda: T0)
    follow_ups = list_tasks(settings, created_by_prefix=f"task:{source.id}")
    assert len(follow_ups) == 1
    fix = follow_ups[0]
    assert (fix.type, fix.priority, fix.status, fix.parent_task) == ("corrective", "high", "scheduled", source.id)
    assert fix.cause == Cause("finding", source.id, "token file is world-readable")
    assert fix.due_at == T0 + 3600
    # The same finding seen again while the follow-up is open opens nothing new.
    _add(settings, "finder", procedure="probe_finder", params={"plant": plant})
    worker.run_one(settings, worker_id="w1", clock=lambda: T0 + 10)
    assert len(list_tasks(settings, type="corrective")) == 1
    # The check runs the finder again: the finding is still there, so the follow-up fails, without retries.
    checked = worker.run_one(settings, worker_id="w1", clock=lambda: T0 + 3600)
    assert checked.id == fix.id and checked.status == "failed"
    assert "still there: token file is world-readable" in checked.attempts[-1].error
    # Fixed: a retried check no longer finds it and succeeds.
    with_fix = retry_task(settings, fix.id, actor=OPERATOR, now=T0 + 4000)
    from opscore.store import open_store, tasks

    with open_store(settings).write() as conn:
        conn.execute(tasks.update().where(tasks.c.id == with_fix.id).values(params='{"label": "finder", "plant": []}'))
    assert worker.run_one(settings, worker_id="w1", clock=lambda: T0 + 4001).status == "success"


def test_a_task_whose_worker_died_is_retried_after_its_lease(workspace):
    settings = replace(workspace, task_lease_seconds=30.0)
    task = _add(settings, "orphan")
    claimed = worker.claim(settings, "dead-worker", T0)
    assert claimed.id == task.id and claimed.status == "running"
    # Pretend the holder ran on another host: only the lease's end frees the task.
    from opscore.store import open_store, tasks

    with open_store(settings).write() as conn:
        conn.execute(tasks.update().where(tasks.c.id == task.id).values(lease_host="elsewhere"))
    assert worker.run_one(settings, worker_id="w2", clock=lambda: T0 + 29) is None
    done = worker.run_one(settings, worker_id="w2", clock=lambda: T0 + 31)
    assert done.id == task.id and done.status == "success"
    assert [(a.worker, a.outcome) for a in done.attempts] == [("dead-worker", "lost"), ("w2", "success")]


def test_to_dict_has_the_design_contract(workspace):
    task = _add(workspace, "shape", cause=Cause("schedule", "daily@2026-12-03T02:00:00+00:00", "daily maintenance"))
    data = task.to_dict()
    for key in ("id", "title", "type", "priority", "status", "due_at", "created_by", "cause", "attempts", "result"):
        assert key in data
    assert data["cause"] == {"kind": "schedule", "id": "daily@2026-12-03T02:00:00+00:00", "summary": "daily maintenance"}
    assert data["attempts"] == [] and data["result"] is None


def test_a_viewer_cannot_change_the_queue(workspace):
    viewer = Actor("guest", "viewer", "dashboard")
    task = _add(workspace, "v")
    for change in (lambda: create_task(workspace, procedure="probe_record", actor=viewer),
                   lambda: cancel_task(workspace, task.id, actor=viewer),
                   lambda: run_task_now(workspace, task.id, actor=viewer),
                   lambda: worker.execute_task(workspace, task.id, actor=viewer)):
        with pytest.raises(PermissionDenied, match="needs an operator"):
            change()
    assert [t.status for t in list_tasks(workspace)] == ["pending"]


def test_due_times_read_as_operators_write_them():
    from datetime import UTC, datetime

    NOW = T0
    assert due_time("now", NOW) == NOW and due_time("", NOW) == NOW
    assert due_time("2h", NOW) == NOW + 7200 and due_time("in 30m", NOW) == NOW + 1800
    assert due_time("2026-12-03T18:00", NOW) == datetime(2026, 12, 3, 18, tzinfo=UTC).timestamp()
    with pytest.raises(BadInputError, match="due: expected now, a delay"):
        due_time("soon", NOW)
