"""Several worker processes on one store: every task runs exactly once, and a dead worker's task comes back.

On PostgreSQL the claim is ``FOR UPDATE SKIP LOCKED``; on SQLite the single write lock. Both run here
(PostgreSQL when OPSCORE_TEST_PG_URL is set, as .ci/run sets it).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from opscore.config import replace
from opscore.operations.tasks import get_task, list_tasks, new_task_id, priority_rank
from opscore.store import open_store, tasks
from tests.operations import queue_probes  # noqa: F401 - registers the probes in this process too

CHILD = Path(__file__).with_name("queue_worker_process.py")
pytestmark = pytest.mark.slow


def _start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _trace(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_four_workers_drain_500_tasks_each_exactly_once(any_workspace, tmp_path, monkeypatch):
    log = tmp_path / "probe.log"
    monkeypatch.setenv("OPSCORE_PROBE_LOG", str(log))
    now = time.time()
    rows = [dict(id=new_task_id(), title=f"probe {i}", procedure="probe_record", params=f'{{"label": "t{i}"}}',
                 type="preventive", priority="medium", priority_rank=priority_rank("medium"), status="pending",
                 due_at=now - 1, created_at=now, updated_at=now, created_by="operator:tester",
                 cause_kind="operator", cause_id="tester", cause_summary="load", max_attempts=4, attempt_count=0,
                 estimated_seconds=0.0, cancel_requested=0, note="") for i in range(500)]
    with open_store(any_workspace).write() as conn:
        conn.execute(insert(tasks), rows)
    workers = [_start(dict(os.environ), "--until-idle") for _ in range(4)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in outputs]

    starts = collections.Counter(label for label, _pid, what, *_ in _trace(log) if what == "start")
    assert len(starts) == 500 and set(starts.values()) == {1}  # each task ran, and only once
    pids = {pid for _label, pid, what, *_ in _trace(log) if what == "start"}
    assert len(pids) >= 2, "the work should spread over several workers"
    done = list_tasks(any_workspace, limit=1000)
    assert len(done) == 500 and {t.status for t in done} == {"success"}
    assert {len(t.attempts) for t in done} == {1}


def _wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_worker_lost_mid_task_leaves_it_to_be_retried_never_run_twice_at_once(any_workspace, tmp_path,
                                                                                 monkeypatch, how):
    """SIGKILL: the process is gone. SIGSTOP: it is frozen past its lease, then wakes up and must stand down."""
    if how == "SIGSTOP" and "postgresql" not in any_workspace.database_url:
        pytest.skip("the frozen worker is checked on PostgreSQL, where several hosts share a store")
    monkeypatch.setenv("OPSCORE_PROBE_LOG", str(tmp_path / "probe.log"))
    monkeypatch.setenv("OPSCORE_TASK_LEASE_SECONDS", "2")
    settings = replace(any_workspace, task_lease_seconds=2.0)
    from opscore.operations.tasks import create_task

    task = create_task(settings, procedure="probe_record", params={"label": "long", "steps": 25, "step_seconds": 0.1},
                       created_by="operator:tester")
    first = _start(dict(os.environ))
    _wait_until(lambda: any(w == "start" for _l, _p, w, *_ in _trace(tmp_path / "probe.log")), "the first start")
    os.kill(first.pid, getattr(signal, how))
    lost_at = time.time()
    if how == "SIGKILL":
        first.wait(timeout=10)
    # Frozen, it still holds a lease nobody renews: the task is running, and stays so until the lease ends.
    assert get_task(settings, task.id).status == "running"
    second = _start(dict(os.environ))
    try:
        _wait_until(lambda: get_task(settings, task.id).status == "success", "the retry to succeed")
        if how == "SIGSTOP":
            os.kill(first.pid, signal.SIGCONT)
            time.sleep(1.0)  # awake, it reaches a checkpoint, finds the task taken back and writes nothing
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    final = get_task(settings, task.id)
    assert final.status == "success"
    assert [a.outcome for a in final.attempts] == ["lost", "success"]
    assert final.attempts[0].worker != final.attempts[1].worker
    trace = _trace(tmp_path / "probe.log")
    first_pid, second_pid = str(first.pid), str(second.pid)
    assert [w for _l, p, w, *_ in trace if p == first_pid] == ["start"]  # the lost run never finished
    assert [w for _l, p, w, *_ in trace if p == second_pid] == ["start", "end"]
    second_start = next(float(t) for _l, p, w, t in trace if p == second_pid and w == "start")
    # Taken back only once the first worker was lost, and (frozen) only after its lease ran out.
    assert second_start > lost_at + (1.5 if how == "SIGSTOP" else 0.0)
